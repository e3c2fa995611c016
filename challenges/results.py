"""Checking what evaluate() returned against the phase's splits and leaderboard labels. Pure.

Our workers and remote evaluation (a host's own machine, through EvalAI's API) share it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class ResultError(ValueError):
    """evaluate() returned something we cannot put on a leaderboard. The message says what."""


@dataclass
class ParsedResult:
    scores: dict[str, dict[str, float]]  # split codename -> label -> value
    missing_splits: list[str] = field(default_factory=list)
    submission_result: Any = None
    submission_metadata: Any = None


def parse_result(
    output: Any, *, splits: dict[str, list[str]], partial_ok: bool = False
) -> ParsedResult:
    """Validate evaluate()'s return value.

    `splits` maps each split codename of the phase to its leaderboard's labels. Every
    split must be reported unless `partial_ok` (partial evaluation enabled); every
    label of a reported split must be a finite number.
    """
    if not isinstance(output, dict):
        raise ResultError(
            f"evaluate() must return a dict with a 'result' key, not {type(output).__name__}."
        )
    if "result" not in output:
        raise ResultError(
            "evaluate() returned no 'result' key: return {'result': [{split: {label: number}}]}."
        )
    entries = output["result"]
    if isinstance(entries, dict):
        entries = [{k: v} for k, v in entries.items()]
    if not isinstance(entries, list):
        raise ResultError(
            f"'result' must be a list of {{split: {{label: number}}}}, not {type(entries).__name__}."
        )
    # CodaLab/Codabench bundles (challenges.bundle.codalab_runtime): a column whose key the
    # scoring program did not write is an empty cell, as there, not a failure.
    missing_labels_ok = output.get("missing_labels_ok") is True
    scores: dict[str, dict[str, float]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ResultError(
                f"result[{index}] must be a dict {{split: {{label: number}}}}, not {type(entry).__name__}."
            )
        for split, values in entry.items():
            if split not in splits:
                known = ", ".join(sorted(splits)) or "none"
                raise ResultError(
                    f"result[{index}] names split {split!r}, which is not a split of this phase (splits: {known})."
                )
            if split in scores:
                raise ResultError(f"result[{index}] reports split {split!r} a second time.")
            if not isinstance(values, dict):
                raise ResultError(f"result[{index}][{split!r}] must be a dict of label -> number.")
            scores[split] = _check_labels(
                split, values, splits[split], missing_ok=missing_labels_ok
            )
    missing = [s for s in splits if s not in scores]
    if not scores:
        raise ResultError(f"'result' reports no split; expected: {', '.join(splits)}.")
    if missing and not partial_ok:
        raise ResultError(f"'result' is missing split(s) {', '.join(missing)} of this phase.")
    return ParsedResult(
        scores=scores,
        missing_splits=missing,
        submission_result=output.get("submission_result"),
        submission_metadata=output.get("submission_metadata"),
    )


def _check_labels(
    split: str, values: dict[str, Any], labels: list[str], *, missing_ok: bool = False
) -> dict[str, float]:
    clean: dict[str, float] = {}
    for label in labels:
        if label not in values and not missing_ok:
            raise ResultError(
                f"Split {split!r} lacks label {label!r} (labels: {', '.join(labels)})."
            )
    for label, value in values.items():
        if label not in labels:
            continue  # extra metrics are kept out of the leaderboard, as EvalAI does
        if isinstance(value, bool | str | bytes) or value is None:
            raise ResultError(f"Split {split!r} label {label!r} is {value!r}, not a number.")
        if not isinstance(value, int | float):
            try:
                value = float(value)  # numpy scalars
            except (TypeError, ValueError):
                raise ResultError(
                    f"Split {split!r} label {label!r} is {value!r}, not a number."
                ) from None
        if not math.isfinite(value):
            raise ResultError(f"Split {split!r} label {label!r} is {value}, not a finite number.")
        clean[label] = float(value)
    return clean

"""Checking what evaluate() returned against the phase's splits and leaderboard labels. Pure.

Our workers and remote evaluation (a host's own machine, through EvalAI's API) share it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

try:
    from django.utils.translation import gettext as _
except ImportError:  # `python -m workers.predict` and the sandbox's runner run without Django

    def _(message: str) -> str:
        return message


class ResultError(ValueError):
    """evaluate() returned something we cannot put on a leaderboard. The message says what."""


@dataclass
class ParsedResult:
    scores: dict[str, dict[str, float]]  # split codename -> label -> value
    missing_splits: list[str] = field(default_factory=list)
    submission_result: Any = None
    submission_metadata: Any = None
    # Splits whose scores the submitting team may not read on its submission
    # (EvalAI's `show_to_participant: false`); hosts and leaderboards still have them.
    hidden_splits: list[str] = field(default_factory=list)
    # Split codename -> leaderboard labels the result did not report (cells left empty).
    missing_labels: dict[str, list[str]] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """What a host should know although the result was accepted."""
        return [
            _(
                "Split %(split)s lacks label(s) %(labels)s: those cells stay empty, and an "
                "entry without the ordering label is listed unranked after the ranked ones."
            )
            % {"split": repr(split), "labels": ", ".join(labels)}
            for split, labels in self.missing_labels.items()
        ]


def parse_result(
    output: Any, *, splits: dict[str, list[str]], partial_ok: bool = False
) -> ParsedResult:
    """Validate evaluate()'s return value.

    `splits` maps each split codename of the phase to its leaderboard's labels. Every
    split must be reported unless `partial_ok` (partial evaluation enabled); every
    reported label must be a finite number. A label the result leaves out is not an
    error (EvalAI stores such a result too): it is listed in `missing_labels`.

    Two shapes of `result` entry are read: ours (and EvalAI's workers'), `{split: {label:
    number}}`, and the one EvalAI's `update_submission` takes from remote evaluation,
    `{"split": codename, "show_to_participant": bool, "accuracies": {label: number}}`,
    where an absent `show_to_participant` means false, as in EvalAI.
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
    scores: dict[str, dict[str, float]] = {}
    hidden: list[str] = []
    missing_labels: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ResultError(
                f"result[{index}] must be a dict {{split: {{label: number}}}}, not {type(entry).__name__}."
            )
        if _is_evalai_entry(entry):
            entry, shown = _from_evalai_entry(index, entry)
            if not shown:
                hidden.extend(entry)
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
            scores[split] = _check_labels(split, values, splits[split])
            absent = [label for label in splits[split] if label not in scores[split]]
            if absent:
                missing_labels[split] = absent
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
        hidden_splits=hidden,
        missing_labels=missing_labels,
    )


def _is_evalai_entry(entry: dict[str, Any]) -> bool:
    # A split named "split" in our shape maps to a dict of labels, never to a string.
    return isinstance(entry.get("split"), str) and "accuracies" in entry


def _from_evalai_entry(index: int, entry: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    unknown = sorted(set(entry) - {"split", "accuracies", "show_to_participant"})
    if unknown:
        raise ResultError(
            f"result[{index}] has key(s) {', '.join(unknown)}; an EvalAI-style entry has only "
            "split, show_to_participant and accuracies."
        )
    shown = entry.get("show_to_participant", False)
    if isinstance(shown, str):
        shown = shown.strip().lower() in {"true", "1", "yes"}
    return {entry["split"]: entry["accuracies"]}, bool(shown)


def _check_labels(split: str, values: dict[str, Any], labels: list[str]) -> dict[str, float]:
    clean: dict[str, float] = {}
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

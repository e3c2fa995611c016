"""Checking a bot's predictions file against the round's live features, in the web
request, so a format error is answered at once. Pure: the csv module, no pandas.

Live features are a CSV whose `id` column (else its first column) names the rows; the
predictions are a CSV `id,prediction` with exactly those ids, each once, and finite numbers.
"""

from __future__ import annotations

import codecs
import csv
import math
from collections.abc import Iterable
from typing import IO

ID_COLUMN, PREDICTION = "id", "prediction"
MAX_EXAMPLES = 5


class InvalidRoundPredictions(ValueError):
    """The file cannot be scored; the message says what is wrong and what to do."""


def _rows(stream: IO[bytes]) -> Iterable[list[str]]:
    return csv.reader(codecs.iterdecode(stream, "utf-8-sig"))


def live_feature_ids(stream: IO[bytes]) -> list[str]:
    reader = _rows(stream)
    header = [c.strip() for c in next(reader, [])]
    if not header:
        raise InvalidRoundPredictions("The round's live features file is empty.")
    column = header.index(ID_COLUMN) if ID_COLUMN in header else 0
    return [row[column].strip() for row in reader if row]


def _examples(values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:MAX_EXAMPLES])
    return shown + (", ..." if len(values) > MAX_EXAMPLES else "")


def check_round_predictions(stream: IO[bytes], *, ids: list[str]) -> int:
    """The number of rows when valid; InvalidRoundPredictions otherwise."""
    try:
        reader = _rows(stream)
        header = [c.strip().lower() for c in next(reader, [])]
        if header != [ID_COLUMN, PREDICTION]:
            raise InvalidRoundPredictions(
                f"The predictions file must start with the header 'id,prediction', not "
                f"{','.join(header)!r}."
            )
        seen: set[str] = set()
        repeated, bad = [], []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise InvalidRoundPredictions(
                    f"Line {line} has {len(row)} values; every line is 'id,prediction'."
                )
            key, value = row[0].strip(), row[1].strip()
            if key in seen:
                repeated.append(key)
            seen.add(key)
            try:
                if not math.isfinite(float(value)):
                    bad.append(key)
            except ValueError:
                bad.append(key)
    except UnicodeDecodeError:
        raise InvalidRoundPredictions(
            "The predictions file is not UTF-8 text; upload a plain CSV file."
        ) from None
    except csv.Error as exc:
        raise InvalidRoundPredictions(f"The predictions file is not valid CSV ({exc}).") from None
    if repeated:
        raise InvalidRoundPredictions(
            f"{len(repeated)} id(s) appear more than once: {_examples(repeated)}."
        )
    if bad:
        raise InvalidRoundPredictions(
            f"{len(bad)} prediction(s) are not finite numbers (ids {_examples(bad)})."
        )
    expected = set(ids)
    unknown = sorted(seen - expected)
    if unknown:
        raise InvalidRoundPredictions(
            f"{len(unknown)} id(s) are not in this round's live features: {_examples(unknown)}. "
            "Predict the live features of the open round."
        )
    missing = [i for i in ids if i not in seen]
    if missing:
        raise InvalidRoundPredictions(
            f"Predictions are missing for {len(missing)} of {len(expected)} ids: "
            f"{_examples(missing)}."
        )
    return len(seen)

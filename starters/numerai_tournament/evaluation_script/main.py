"""Evaluation script of the tournament starter.

The platform calls evaluate() with a targets file (CSV id,era,target: the practice
targets, or a round's targets when they arrive) and the predictions (CSV id,prediction:
a team's upload, or what its model predicted on the round's live features). It returns
the Pearson correlation per era, in era order, as `submission_metadata["per_era"]`: the
platform turns those into the tournament's metrics (mean, std, Sharpe, max drawdown) the
same way for every round. The result's Corr, Sharpe and MaxDrawdown use the same
definitions, for the practice phase's ordinary leaderboard.
"""

import math

import numpy as np
import pandas as pd

PHASE_SPLITS = {"practice": "practice_split", "rounds": "round"}


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    if phase_codename not in PHASE_SPLITS:
        raise ValueError(
            f"This evaluation script does not know the phase '{phase_codename}'; it knows "
            f"{sorted(PHASE_SPLITS)}."
        )
    truth = pd.read_csv(test_annotation_file, dtype={"id": str, "era": str})
    predicted = _read_submission(user_submission_file, truth["id"])
    truth = truth.assign(prediction=truth["id"].map(predicted))
    per_era = {}
    for era, rows in truth.groupby("era", sort=True):
        per_era[str(era)] = _pearson(rows["prediction"].to_numpy(), rows["target"].to_numpy())
    values = list(per_era.values())
    scores = {
        "Corr": float(np.mean(values)),
        "Sharpe": _sharpe(values),
        "MaxDrawdown": _drawdown(values),
    }
    split = PHASE_SPLITS[phase_codename]
    print(f"Corr={scores['Corr']:.4f} over {len(values)} eras")
    print(f"Completed evaluation of {len(truth)} predictions for phase '{phase_codename}'")
    return {
        "result": [{split: scores}],
        "submission_result": {split: scores},
        "submission_metadata": {"per_era": per_era},
    }


def _read_submission(path, expected_ids):
    try:
        frame = pd.read_csv(path, dtype={"id": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"The submission is not a CSV file 'id,prediction' ({exc}).") from None
    if list(frame.columns) != ["id", "prediction"]:
        raise ValueError(
            f"The submission's header must be 'id,prediction', not {list(frame.columns)}."
        )
    if frame["id"].duplicated().any() or set(frame["id"]) != set(expected_ids):
        raise ValueError("The submission must predict every id of the features exactly once.")
    values = pd.to_numeric(frame["prediction"], errors="coerce")
    if not np.isfinite(values.to_numpy(dtype=float)).all():
        raise ValueError("Every prediction must be a finite number.")
    return pd.Series(values.to_numpy(dtype=float), index=frame["id"].to_numpy())


def _pearson(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    # A constant column has no defined correlation; count it as no signal, not NaN.
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    return float(np.clip(np.dot(a, b) / math.sqrt(np.dot(a, a) * np.dot(b, b)), -1.0, 1.0))


def _sharpe(values):
    if len(values) < 2:
        return 0.0
    std = float(np.std(values, ddof=1))
    return float(np.mean(values)) / std if std > 1e-12 else 0.0


def _drawdown(values):
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    return float((cumulative - np.maximum.accumulate(cumulative)).min()) + 0.0

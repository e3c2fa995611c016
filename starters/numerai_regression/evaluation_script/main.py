"""Evaluation script of the Numerai-style starter.

The platform calls evaluate() once per submission, with the phase's annotation file (CSV
with columns id,era,target,split) and the participant's file (CSV with columns
id,prediction). Metrics, per split, over the split's eras in ascending era order:

- Corr: mean over eras of the Spearman rank correlation between prediction and target
  within the era (ties get average ranks).
- CorrPearson: the same with Pearson's correlation of the raw values.
- Sharpe: mean of the per-era Spearman correlations divided by their sample standard
  deviation (ddof=1, as pandas' .std() in Numerai's example scripts).
- MaxDrawdown: the largest peak-to-trough fall of the cumulative sum of the per-era
  Spearman correlations, the running peak starting at 0 before the first era. Reported
  as a number <= 0 (0 means the cumulative score never fell), so higher is better.

NaN-free by construction: an era where the predictions or the targets are constant has
correlation 0.0, and Sharpe is 0.0 when there are fewer than two eras or the per-era
correlations do not vary. Problems with the participant's file raise ValueError with a
message the participant can act on; stdout is shown to the participant, so nothing here
prints scores of host-only splits.
"""

import math

import numpy as np
import pandas as pd
from scipy.stats import rankdata

# Split codenames of each phase, in the order the results are returned. They must match
# the challenge_phase_splits of challenge_config.yaml.
PHASE_SPLITS = {
    "validation": ["validation_split"],
    "live": ["public", "private"],
    "live_code": ["public", "private"],
}
# Splits the participant may see right away (visibility 3 in challenge_config.yaml).
PUBLIC_SPLITS = {"validation": ["validation_split"], "live": ["public"], "live_code": ["public"]}
# The file whose ids a phase's submission must cover, named in error messages.
PHASE_FEATURES = {
    "validation": "data/validation_features.csv",
    "live": "data/live_features.csv",
    "live_code": "the hidden live features (the platform ran your model on them)",
}
SUBMISSION_COLUMNS = ["id", "prediction"]
LABELS = ["Corr", "Sharpe", "MaxDrawdown", "CorrPearson"]
MAX_EXAMPLES = 5


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    """Score a submission; see DESIGN.md section 4 for the contract."""
    print(f"Starting evaluation for phase '{phase_codename}'")
    if phase_codename not in PHASE_SPLITS:
        raise ValueError(
            f"This evaluation script does not know the phase '{phase_codename}'; "
            f"it knows {sorted(PHASE_SPLITS)}. Check the phase codenames in challenge_config.yaml."
        )
    truth = _read_annotations(test_annotation_file, phase_codename)
    predicted = _read_submission(
        user_submission_file,
        expected_ids=truth["id"],
        features_file=PHASE_FEATURES[phase_codename],
    )
    truth = truth.assign(prediction=truth["id"].map(predicted))

    result = []
    per_era = {}
    for split in PHASE_SPLITS[phase_codename]:
        rows = truth[truth["split"] == split]
        eras = sorted(rows["era"].unique())
        spearman, pearson = [], []
        for era in eras:
            in_era = rows[rows["era"] == era]
            target = in_era["target"].to_numpy()
            prediction = in_era["prediction"].to_numpy()
            spearman.append(_pearson(rankdata(prediction), rankdata(target)))
            pearson.append(_pearson(prediction, target))
        scores = {
            "Corr": float(np.mean(spearman)),
            "Sharpe": sharpe(spearman),
            "MaxDrawdown": max_drawdown(spearman),
            "CorrPearson": float(np.mean(pearson)),
        }
        _check_finite(scores)
        result.append({split: scores})
        per_era[split] = {str(era): corr for era, corr in zip(eras, spearman, strict=True)}

    public = {
        split: scores
        for entry in result
        for split, scores in entry.items()
        if split in PUBLIC_SPLITS[phase_codename]
    }
    for split, scores in public.items():
        shown = ", ".join(f"{label}={value:.4f}" for label, value in scores.items())
        print(f"Split '{split}' ({len(per_era[split])} eras): {shown}")
    print(f"Completed evaluation of {len(truth)} predictions for phase '{phase_codename}'")
    return {
        "result": result,
        "submission_result": public,
        "submission_metadata": {"phase": phase_codename, "per_era_corr": per_era},
    }


def _pearson(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    # A constant column has no defined correlation; count it as no signal, not NaN.
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    return float(np.clip(np.dot(a, b) / math.sqrt(np.dot(a, a) * np.dot(b, b)), -1.0, 1.0))


def sharpe(per_era_corr):
    values = np.asarray(per_era_corr, dtype=float)
    if len(values) < 2:
        return 0.0
    mean, std = float(values.mean()), float(values.std(ddof=1))
    # Identical per-era scores (e.g. constant predictions) would divide by ~0.
    if std <= 1e-9:
        return 0.0
    return mean / std


def max_drawdown(per_era_corr):
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(per_era_corr, dtype=float))])
    drawdowns = cumulative - np.maximum.accumulate(cumulative)
    return float(drawdowns.min()) + 0.0  # + 0.0 turns -0.0 into 0.0


def _read_annotations(path, phase_codename):
    # A broken annotation file is the host's problem, not the participant's: say so.
    truth = pd.read_csv(path, dtype={"id": str, "split": str})
    missing = {"id", "era", "target", "split"} - set(truth.columns)
    if missing:
        raise RuntimeError(
            f"Annotation file {path} lacks columns {sorted(missing)} (host configuration error)."
        )
    splits = set(truth["split"])
    if splits != set(PHASE_SPLITS[phase_codename]):
        raise RuntimeError(
            f"Annotation file {path} has splits {sorted(splits)} but phase "
            f"'{phase_codename}' expects {PHASE_SPLITS[phase_codename]} (host configuration error)."
        )
    truth["id"] = truth["id"].str.strip()
    return truth


def _read_csv(path, columns):
    header = ",".join(columns)
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"The submission file is empty. Upload a CSV file whose first line is '{header}', "
            "followed by one line per id."
        ) from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"The submission could not be read as a UTF-8 CSV file ({reason}). Upload a plain "
            f"CSV file (not a zip or a spreadsheet) whose first line is '{header}'."
        ) from None
    frame.columns = [str(column).strip().lower() for column in frame.columns]
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        found = ", ".join(repr(column) for column in frame.columns) or "none"
        hint = " Is the header line missing?" if len(missing) == len(columns) else ""
        raise ValueError(
            f"The submission is missing the column(s) {', '.join(map(repr, missing))}. "
            f"Its first line must be the header '{header}'; the columns found were {found}." + hint
        )
    frame = frame[columns].astype(str)
    for column in columns:
        frame[column] = frame[column].str.strip()
        empty = frame.index[frame[column] == ""]
        if len(empty):
            lines = ", ".join(str(i + 2) for i in empty[:MAX_EXAMPLES])
            raise ValueError(
                f"The submission has {len(empty)} empty value(s) in column '{column}' "
                f"(line(s) {lines}). Every line needs a value in every column."
            )
    return frame


def _examples(values):
    values = list(values)
    shown = ", ".join(repr(value) for value in values[:MAX_EXAMPLES])
    return shown + (", ..." if len(values) > MAX_EXAMPLES else "")


def _check_ids(frame, expected_ids, features_file):
    duplicated = frame["id"][frame["id"].duplicated()].unique()
    if len(duplicated):
        raise ValueError(
            f"The submission lists {len(duplicated)} id(s) more than once: "
            f"{_examples(duplicated)}. Give exactly one prediction per id."
        )
    expected = set(expected_ids)
    unknown = [value for value in frame["id"] if value not in expected]
    if unknown:
        raise ValueError(
            f"The submission has {len(unknown)} id(s) that are not in this phase's data: "
            f"{_examples(unknown)}. Predict exactly the ids of {features_file} "
            "(did you submit predictions for another phase?)."
        )
    given = set(frame["id"])
    missing = [value for value in expected_ids if value not in given]
    if missing:
        raise ValueError(
            f"The submission lacks predictions for {len(missing)} of {len(expected)} ids: "
            f"{_examples(missing)}. Predict every id of {features_file}."
        )


def _read_submission(path, expected_ids, features_file):
    frame = _read_csv(path, SUBMISSION_COLUMNS)
    _check_ids(frame, expected_ids, features_file)
    values = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"The submission has {int(bad.sum())} prediction(s) that are not finite numbers: "
            f"{_examples(frame['prediction'][bad].unique())} (ids "
            f"{_examples(frame['id'][bad])}). Every prediction must be a number such as 0.5."
        )
    return pd.Series(values, index=frame["id"].to_numpy())


def _check_finite(scores):
    for label, value in scores.items():
        if not math.isfinite(value):
            raise RuntimeError(f"Metric {label} is not finite ({value}); please tell the host.")

"""Evaluation script of the tabular classification starter.

The platform calls evaluate() once per submission, with the phase's annotation file (CSV
with columns id,label,split) and the participant's file (CSV with columns id,label).
Problems with the participant's file raise ValueError with a message the participant can
act on; everything printed to stdout is shown to the participant (unless the phase
disables logs), so nothing here prints scores of host-only splits.
"""

import math

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

# Split codenames of each phase, in the order the results are returned. They must match
# the challenge_phase_splits of challenge_config.yaml.
PHASE_SPLITS = {"dev": ["dev_split"], "test": ["public", "private"]}
# Splits the participant may see right away (visibility 3 in challenge_config.yaml).
PUBLIC_SPLITS = {"dev": ["dev_split"], "test": ["public"]}
# The public file whose ids a phase's submission must cover, named in error messages.
PHASE_FEATURES = {"dev": "data/dev_features.csv", "test": "data/test_features.csv"}
SUBMISSION_COLUMNS = ["id", "label"]
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
    classes = sorted(truth["label"].unique())
    predicted = _read_submission(
        user_submission_file,
        expected_ids=truth["id"],
        classes=classes,
        features_file=PHASE_FEATURES[phase_codename],
    )
    truth = truth.assign(predicted=truth["id"].map(predicted))

    result = []
    per_class_f1 = {}
    for split in PHASE_SPLITS[phase_codename]:
        rows = truth[truth["split"] == split]
        scores = {
            "Accuracy": float(accuracy_score(rows["label"], rows["predicted"])),
            "Macro-F1": float(
                f1_score(
                    rows["label"],
                    rows["predicted"],
                    labels=classes,
                    average="macro",
                    zero_division=0,
                )
            ),
        }
        _check_finite(scores)
        result.append({split: scores})
        f1s = f1_score(
            rows["label"], rows["predicted"], labels=classes, average=None, zero_division=0
        )
        per_class_f1[split] = {label: float(f1) for label, f1 in zip(classes, f1s, strict=True)}

    public = {
        split: scores
        for entry in result
        for split, scores in entry.items()
        if split in PUBLIC_SPLITS[phase_codename]
    }
    for split, scores in public.items():
        shown = ", ".join(f"{label}={value:.4f}" for label, value in scores.items())
        print(f"Split '{split}': {shown}")
    print(f"Completed evaluation of {len(truth)} predictions for phase '{phase_codename}'")
    return {
        "result": result,
        "submission_result": public,
        "submission_metadata": {
            "phase": phase_codename,
            "rows_per_split": {
                split: int((truth["split"] == split).sum())
                for split in PHASE_SPLITS[phase_codename]
            },
            "per_class_f1": per_class_f1,
        },
    }


def _read_annotations(path, phase_codename):
    # A broken annotation file is the host's problem, not the participant's: say so.
    truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"id", "label", "split"} - set(truth.columns)
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
    truth["label"] = truth["label"].str.strip()
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


def _normalise_label(value):
    # "1.0" written by a float column means the class "1".
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


def _read_submission(path, expected_ids, classes, features_file):
    frame = _read_csv(path, SUBMISSION_COLUMNS)
    _check_ids(frame, expected_ids, features_file)
    labels = frame["label"].map(_normalise_label)
    invalid = labels[~labels.isin(classes)]
    if len(invalid):
        raise ValueError(
            f"The submission has {len(invalid)} label(s) that are not classes of this "
            f"challenge: {_examples(invalid.unique())}. Valid labels are {', '.join(classes)}."
        )
    return pd.Series(labels.to_numpy(), index=frame["id"].to_numpy())


def _check_finite(scores):
    for label, value in scores.items():
        if not math.isfinite(value):
            raise RuntimeError(f"Metric {label} is not finite ({value}); please tell the host.")


def warm_up():
    """Called once by evalserver's warm parent, before any submission (optional; EvalAI
    ignores it): score a tiny made-up submission so that pandas' and scikit-learn's
    first-call costs are paid once, not in every evaluation. No real data is read."""
    import contextlib
    import io
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        truth, submission = os.path.join(folder, "truth.csv"), os.path.join(folder, "sub.csv")
        with open(truth, "w") as fh:
            fh.write("id,label,split\n1,a,dev_split\n2,b,dev_split\n")
        with open(submission, "w", encoding="utf-8-sig") as fh:
            fh.write("id,label\n1,a\n2,a\n")
        with contextlib.redirect_stdout(io.StringIO()):
            evaluate(truth, submission, "dev", submission_metadata={})

"""evaluate() of the sandbox self-check (workers.sandbox.check): what real evaluation scripts
import lazily, inside evaluate(), so only a sandboxed child shows whether it can reach them.
It imports nothing at load time on purpose: the warm parent must not have these already."""

import importlib
import os

# Lazily imported by pandas and scikit-learn scripts: codecs by name, the CSV and Parquet
# readers (pyarrow), scikit-learn's metrics (scipy, joblib).
MODULES = (
    "encodings.utf_8_sig",
    "encodings.latin_1",
    "csv",
    "json",
    "decimal",
    "pandas",
    "pandas.io.parsers",
    "pandas.io.parquet",
    "pyarrow.parquet",
    "sklearn.metrics",
)


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    if phase_codename == "light":
        # The models' uid: the same confinement, so the same folders; prove the uid can
        # import (a codec) and write in its work folder without paying for pandas again.
        importlib.import_module("encodings.utf_8_sig")
        with open("selfcheck.txt", "w") as fh:
            fh.write("ok")
        return {"result": [{"check": {"accuracy": 1.0}}], "submission_result": {}}
    for name in MODULES:
        importlib.import_module(name)
    import pandas as pd
    from sklearn.metrics import accuracy_score

    with open(test_annotation_file, encoding="utf-8-sig") as fh:
        truth = pd.read_csv(fh)
    frame = pd.read_csv(user_submission_file)
    # Written in the work folder (the current one) and read back, through pyarrow.
    frame.to_parquet("selfcheck.parquet")
    back = pd.read_parquet("selfcheck.parquet")
    with open("selfcheck.txt", "w") as fh:
        fh.write("ok")
    tmp_writable = True
    try:
        with open("/tmp/selfcheck.txt", "w") as fh:
            fh.write("ok")
    except OSError:
        tmp_writable = False
    score = accuracy_score(truth["label"], back["label"])
    return {
        "result": [{"check": {"accuracy": score}}],
        "submission_result": {"uid": os.getuid(), "tmp_writable": tmp_writable},
    }

"""Participants' models for tests (cloudpickle files of predict() written from source)
and a code-phase bundle to run them in.

The functions are made in a namespace of their own (no importable module), so cloudpickle
stores them by value, as it does for a function defined in a participant's notebook.
"""

from __future__ import annotations

import importlib.machinery
import sys
import textwrap
import types
from pathlib import Path

import cloudpickle
import yaml

from evalserver.testing import script_bundle_zip
from tests.workers.pipeline_helpers import SCRIPT_CONFIG


def model_bytes(source: str, **closure) -> bytes:
    """`source` defines predict(features); `closure` names become its globals."""
    namespace = {"__name__": "participant_model", **closure}
    exec(textwrap.dedent(source), namespace)  # noqa: S102 - test models from our own source
    return cloudpickle.dumps(namespace["predict"], protocol=5)


def write_model(path: Path, source: str, **closure) -> Path:
    path.write_bytes(model_bytes(source, **closure))
    return path


def model_needing_a_missing_module(module: str = "lightgbm_not_installed_here") -> bytes:
    """A model whose pickle refers to a class of `module`, which the runtime lacks (as a
    LightGBM model unpickled where LightGBM is not installed)."""
    fake = types.ModuleType(module)
    fake.__spec__ = importlib.machinery.ModuleSpec(module, None)

    class Booster:
        def predict(self, features):
            return features

    Booster.__module__, Booster.__qualname__ = module, "Booster"
    fake.Booster = Booster
    sys.modules[module] = fake
    try:
        return model_bytes(
            """
            def predict(features):
                return booster.predict(features)
            """,
            booster=Booster(),
        )
    finally:
        del sys.modules[module]


GOOD = """
import pandas as pd

def predict(features):
    return pd.DataFrame({"prediction": features["f"] / 10.0}, index=features.index)
"""
SERIES = """
def predict(features):
    return features["f"]
"""
RAISES = """
def predict(features):
    raise ValueError("feature 'g' is missing")
"""
LOOP = """
def predict(features):
    while True:
        pass
"""
MEMORY = """
def predict(features):
    hog = bytearray(8 * 1024 ** 3)
    return hog
"""


# ---------------------------------------------------------------- a code phase

ROWS = 20
FEATURES = "id,f\n" + "".join(f"r{i},{i % 10}\n" for i in range(ROWS))
# Every prediction f / 10 is off by 0.05: a Score of 0.95.
TRUTH = "id,target\n" + "".join(f"r{i},{(i % 10) / 10 + 0.05}\n" for i in range(ROWS))
EVALUATE = """
import csv

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    truth = {row["id"]: float(row["target"]) for row in csv.DictReader(open(test_annotation_file))}
    guess = {row["id"]: float(row["prediction"]) for row in csv.DictReader(open(user_submission_file))}
    assert set(guess) == set(truth), "the platform checked the ids"
    error = sum(abs(truth[k] - guess[k]) for k in truth) / len(truth)
    print("scored", len(guess), "rows")
    return {"result": [{"main": {"Score": 1 - error, "Other": len(guess)}}, {"hidden": {"Score": 0, "Other": 0}}]}
"""


def code_bundle(**phase) -> bytes:
    config = yaml.safe_load(yaml.safe_dump(SCRIPT_CONFIG))
    config["title"] = "Code probe"
    config["challenge_phases"][0].update(
        {
            "submission_type": "code",
            "test_annotation_file": "annotations/truth.csv",
            "test_input_file": "inputs/features.csv",
            "allowed_submission_file_types": ".pkl",
            "prediction_range": [0, 1],
            "resources": {"time_limit_s": 4, "memory_mb": 1024},
            **phase,
        }
    )
    return script_bundle_zip(
        config,
        evaluate_source=EVALUATE,
        files={"annotations/truth.csv": TRUTH, "inputs/features.csv": FEATURES},
        description="<p>code probe</p>",
    )

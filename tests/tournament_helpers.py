"""A small tournament challenge and its round data, shared by the tests and bench/.

Each round has ERAS eras of ROWS_PER_ERA rows, one integer feature `f` (0..9). The
targets are f / 10 plus a per-row wobble, so a model predicting f / 10 correlates well,
one predicting 1 - f / 10 badly. The evaluation script scores the per-era Pearson
correlation and returns it as `submission_metadata.per_era`, as a tournament's must.
"""

from __future__ import annotations

import yaml

from evalserver.testing import script_bundle_zip
from tests.workers.pipeline_helpers import SCRIPT_CONFIG

ERAS = 3
ROWS_PER_ERA = 8

TOURNAMENT_EVALUATE = """
import csv
import math

def _corr(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    da = [x - ma for x in a]
    db = [y - mb for y in b]
    den = math.sqrt(sum(x * x for x in da) * sum(y * y for y in db))
    return sum(x * y for x, y in zip(da, db)) / den if den else 0.0

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    truth = list(csv.DictReader(open(test_annotation_file)))
    guess = {r["id"]: float(r["prediction"]) for r in csv.DictReader(open(user_submission_file))}
    eras = {}
    for row in truth:
        eras.setdefault(row["era"], ([], []))
        eras[row["era"]][0].append(guess[row["id"]])
        eras[row["era"]][1].append(float(row["target"]))
    per_era = {era: _corr(p, t) for era, (p, t) in sorted(eras.items())}
    mean = sum(per_era.values()) / len(per_era)
    print("round", kwargs["submission_metadata"].get("round"), "eras", len(per_era))
    return {
        "result": [{"main": {"Score": mean, "Other": len(per_era)}}],
        "submission_metadata": {"per_era": per_era},
    }
"""


def tournament_bundle(
    *, cumulative_rounds: int = 4, round_hours: float = 48, validation: bool = False
) -> bytes:
    config = yaml.safe_load(yaml.safe_dump(SCRIPT_CONFIG))
    config["title"] = "Tournament probe"
    config["dataset_splits"] = config["dataset_splits"][:1]
    config["challenge_phase_splits"] = config["challenge_phase_splits"][:1]
    config["challenge_phases"][0].update(
        {
            "codename": "rounds",
            "submission_type": "code",
            "test_annotation_file": "annotations/example_targets.csv",
            "allowed_submission_file_types": ".pkl, .csv",
            "resources": {"time_limit_s": 20, "memory_mb": 1024},
            "tournament": {
                "cumulative_rounds": cumulative_rounds,
                "round_hours": round_hours,
                "rank_by": "corr_mean",
            },
        }
    )
    files = {"annotations/example_targets.csv": targets(0)}
    if validation:
        # Validation data (DESIGN section 16): round 0's rows with their targets.
        config["challenge_phases"][0]["tournament"].update(
            validation_features="validation/features.csv",
            example_predictions="validation/example.csv",
        )
        files["validation/features.csv"] = validation_features()
        files["validation/example.csv"] = predictions_csv(0, example_prediction)
    return script_bundle_zip(
        config,
        evaluate_source=TOURNAMENT_EVALUATE,
        files=files,
        description="<p>tournament probe</p>",
    )


def _rows(number: int):
    for era in range(1, ERAS + 1):
        for i in range(ROWS_PER_ERA):
            f = (i * 7 + era * 3 + number) % 10
            yield f"r{number}-{era}-{i}", f"era{number}-{era}", f


def live_features(number: int) -> str:
    return "id,era,f\n" + "".join(f"{i},{era},{f}\n" for i, era, f in _rows(number))


def targets(number: int, shift: float = 0.0) -> str:
    """`shift` makes "corrected" targets: they move the wobble, so scores change."""
    lines = []
    for k, (i, era, f) in enumerate(_rows(number)):
        wobble = ((k * 37) % 11 - 5) / 25.0 + shift * ((k % 3) - 1)
        lines.append(f"{i},{era},{f / 10 + wobble:.6f}\n")
    return "id,era,target\n" + "".join(lines)


def validation_features() -> str:
    """Round 0's rows with `era`, the feature `f` and `target`: a model sees all three."""
    target = {line.split(",")[0]: line.split(",")[2] for line in targets(0).splitlines()[1:]}
    return "id,era,f,target\n" + "".join(f"{i},{era},{f},{target[i]}\n" for i, era, f in _rows(0))


def example_prediction(f: int) -> float:
    return ((f * 3) % 10) / 10


def ids(number: int) -> list[str]:
    return [i for i, _era, _f in _rows(number)]


def features(number: int) -> dict[str, int]:
    return {i: f for i, _era, f in _rows(number)}


def predictions_csv(number: int, fn) -> str:
    return "id,prediction\n" + "".join(f"{i},{fn(f):.6f}\n" for i, f in features(number).items())


# Participants' models (predict(live_features) -> DataFrame with `prediction`).
FOLLOWS = """
import pandas as pd

def predict(features):
    return pd.DataFrame({"prediction": features["f"] / 10.0}, index=features.index)
"""
AGAINST = """
import pandas as pd

def predict(features):
    return pd.DataFrame({"prediction": 1 - features["f"] / 10.0}, index=features.index)
"""
MODULO = """
import pandas as pd

def predict(features):
    return pd.DataFrame({"prediction": (features["f"] % 3) / 3.0}, index=features.index)
"""
SQUARED = """
import pandas as pd

def predict(features):
    return pd.DataFrame({"prediction": (features["f"] / 10.0) ** 2}, index=features.index)
"""
BROKEN = """
def predict(features):
    raise KeyError("feature 'g' is not in this round's data")
"""

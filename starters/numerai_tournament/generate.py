"""Generate the data of the tournament starter, deterministically.

    python starters/numerai_tournament/generate.py BUNDLE_DIR SAMPLES_DIR

Eras of 100 rows with 10 integer features (0..4) and a target in {0, .25, .5, .75, 1};
each era draws its own coefficients around a shared set, as in the Numerai starter.

Into BUNDLE_DIR (the challenge zip):
  data/train.csv                        id, era, feature_0..9, target   eras 1-20
  data/practice_features.csv            id, era, feature_0..9           eras 21-28
  annotations/practice_targets.csv      id, era, target
  inputs/example_round_features.csv     round 1's live features (evaluate_local)
  annotations/example_round_targets.csv round 1's targets
Into SAMPLES_DIR (kept out of the zip):
  sample_submission_practice.csv        a Ridge model's predictions
  sample_submission_rounds.pkl          that model as a cloudpickled predict(features)
  rounds/round-<n>/live_features.csv, targets.csv, data_version   rounds 1-4 (4 eras each)
"""

import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

SEED = 20240601
ROWS_PER_ERA = 100
FEATURES = [f"feature_{i}" for i in range(10)]
N_BINS = 5
TRAIN_ERAS, PRACTICE_ERAS, ROUNDS, ERAS_PER_ROUND = 20, 8, 4, 4


def _bins(values):
    ranks = values.argsort(kind="stable").argsort(kind="stable")
    return ranks * N_BINS // len(values)


def _frame(rng, shared, first_era, n_eras, prefix):
    parts = []
    for era in range(first_era, first_era + n_eras):
        coefficients = shared + rng.normal(scale=0.8, size=len(FEATURES))
        X = rng.normal(size=(ROWS_PER_ERA, len(FEATURES)))
        raw = X @ coefficients + rng.normal(scale=rng.uniform(6.0, 16.0), size=ROWS_PER_ERA)
        frame = pd.DataFrame({name: _bins(X[:, j]) for j, name in enumerate(FEATURES)})
        frame.insert(0, "era", f"era{era:03d}")
        frame.insert(0, "id", [f"{prefix}{era:03d}-{i:03d}" for i in range(ROWS_PER_ERA)])
        frame["target"] = _bins(raw) / (N_BINS - 1)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _write(frame, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")


def generate(bundle_dir: Path, samples_dir: Path) -> None:
    bundle_dir, samples_dir = Path(bundle_dir), Path(samples_dir)
    rng = np.random.RandomState(SEED)
    shared = rng.normal(size=len(FEATURES)) * (rng.uniform(size=len(FEATURES)) < 0.7)
    train = _frame(rng, shared, 1, TRAIN_ERAS, "t")
    practice = _frame(rng, shared, TRAIN_ERAS + 1, PRACTICE_ERAS, "p")
    _write(train[["id", "era", *FEATURES, "target"]], bundle_dir / "data" / "train.csv")
    _write(practice[["id", "era", *FEATURES]], bundle_dir / "data" / "practice_features.csv")
    _write(practice[["id", "era", "target"]], bundle_dir / "annotations" / "practice_targets.csv")

    model = Ridge(alpha=10.0).fit(train[FEATURES], train["target"])
    predict = make_predict(model)
    sample = predict(practice.set_index("id")[FEATURES]).reset_index()
    _write(sample.round(6), samples_dir / "sample_submission_practice.csv")
    with (samples_dir / "sample_submission_rounds.pkl").open("wb") as fh:
        cloudpickle.dump(predict, fh, protocol=5)

    first = TRAIN_ERAS + PRACTICE_ERAS + 1
    for number in range(1, ROUNDS + 1):
        live = _frame(rng, shared, first + (number - 1) * ERAS_PER_ROUND, ERAS_PER_ROUND, "r")
        folder = samples_dir / "rounds" / f"round-{number}"
        _write(live[["id", "era", *FEATURES]], folder / "live_features.csv")
        _write(live[["id", "era", "target"]], folder / "targets.csv")
        (folder / "data_version").write_text(f"starter-{number}\n")
        if number == 1:
            _write(
                live[["id", "era", *FEATURES]], bundle_dir / "inputs" / "example_round_features.csv"
            )
            _write(
                live[["id", "era", "target"]],
                bundle_dir / "annotations" / "example_round_targets.csv",
            )


def make_predict(model):
    """What a team uploads: predict(features) -> DataFrame with `prediction` in [0, 1]."""

    def predict(features):
        values = model.predict(features[FEATURES])
        return pd.DataFrame({"prediction": np.clip(values, 0.0, 1.0)}, index=features.index)

    return predict


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} BUNDLE_DIR SAMPLES_DIR")
    generate(Path(sys.argv[1]), Path(sys.argv[2]))

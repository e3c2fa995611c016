"""Generate the data of the Numerai-style starter, deterministically.

    python starters/numerai_regression/generate.py BUNDLE_DIR SAMPLES_DIR

60 eras of 100 rows. Each era draws its own coefficients around a shared set (regimes
drift) and its own noise level (some eras are much harder than others). As on Numerai,
features are binned per era into the integers 0..4 and the target into
{0, 0.25, 0.5, 0.75, 1}.

Into BUNDLE_DIR (these go into the challenge zip):
  data/train.csv                          id, era, feature_00..19, target  eras 1-30
  data/validation_features.csv            id, era, feature_00..19          eras 31-42
  data/live_features.csv                  id, era, feature_00..19          eras 43-60
  annotations/validation_annotations.csv  id, era, target, split           split: validation_split
  annotations/live_annotations.csv        id, era, target, split           split: public (eras 43-51)
                                                                           | private (eras 52-60)
  inputs/live_code_features.parquet       id (index), era, feature_00..19  eras 43-60: the
                                          hidden input of the code phase live_code
Into SAMPLES_DIR (kept out of the zip): sample_submission_validation.csv and
sample_submission_live.csv (id,prediction) from a Ridge model trained on data/train.csv,
and sample_submission_live_code.pkl: that model as a cloudpickled predict(features) for
the code phase, its predictions clipped to the phase's prediction_range [0, 1].
"""

import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

SEED = 20240101
N_ERAS = 60
ROWS_PER_ERA = 100
N_FEATURES = 20
N_BINS = 5
FEATURES = [f"feature_{i:02d}" for i in range(N_FEATURES)]
SPLIT_OF_ERA = {
    **dict.fromkeys(range(1, 31), "train"),
    **dict.fromkeys(range(31, 43), "validation_split"),
    **dict.fromkeys(range(43, 52), "public"),
    **dict.fromkeys(range(52, 61), "private"),
}


def _bins(values, n_bins):
    # Rank within the era, then cut into equal-count bins 0..n_bins-1.
    ranks = values.argsort(kind="stable").argsort(kind="stable")
    return ranks * n_bins // len(values)


def _eras(rng):
    shared = rng.normal(size=N_FEATURES) * (rng.uniform(size=N_FEATURES) < 0.6)
    for era in range(1, N_ERAS + 1):
        coefficients = shared + rng.normal(scale=1.0, size=N_FEATURES)
        X = rng.normal(size=(ROWS_PER_ERA, N_FEATURES))
        noise = rng.normal(scale=rng.uniform(12.0, 36.0), size=ROWS_PER_ERA)
        raw = X @ coefficients + noise
        frame = pd.DataFrame(
            {name: _bins(X[:, j], N_BINS) for j, name in enumerate(FEATURES)},
        )
        frame.insert(0, "era", era)
        frame["target"] = _bins(raw, N_BINS) / (N_BINS - 1)
        yield frame


def _write(frame, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")


def generate(bundle_dir: Path, samples_dir: Path) -> None:
    bundle_dir, samples_dir = Path(bundle_dir), Path(samples_dir)
    rng = np.random.RandomState(SEED)
    frame = pd.concat(list(_eras(rng)), ignore_index=True)
    # Numerai-like opaque ids; drawn until unique (collisions are astronomically rare).
    ids, seen = [], set()
    while len(ids) < len(frame):
        new = f"n{rng.randint(0, 2**60, dtype=np.int64):015x}"
        if new not in seen:
            seen.add(new)
            ids.append(new)
    frame.insert(0, "id", ids)
    frame["split"] = frame["era"].map(SPLIT_OF_ERA)

    def rows(*splits):
        return frame[frame["split"].isin(splits)]

    train, validation, live = rows("train"), rows("validation_split"), rows("public", "private")
    _write(train[["id", "era", *FEATURES, "target"]], bundle_dir / "data" / "train.csv")
    for name, part in {"validation": validation, "live": live}.items():
        _write(part[["id", "era", *FEATURES]], bundle_dir / "data" / f"{name}_features.csv")
        _write(
            part[["id", "era", "target", "split"]],
            bundle_dir / "annotations" / f"{name}_annotations.csv",
        )

    model = Ridge(alpha=10.0).fit(train[FEATURES], train["target"])
    for phase, part in {"validation": validation, "live": live}.items():
        prediction = np.round(model.predict(part[FEATURES]), 6)
        sample = pd.DataFrame({"id": part["id"], "prediction": prediction})
        _write(sample, samples_dir / f"sample_submission_{phase}.csv")

    hidden = bundle_dir / "inputs" / "live_code_features.parquet"
    hidden.parent.mkdir(parents=True, exist_ok=True)
    live[["id", "era", *FEATURES]].set_index("id").to_parquet(hidden, compression="zstd")
    with (samples_dir / "sample_submission_live_code.pkl").open("wb") as fh:
        cloudpickle.dump(make_predict(model), fh, protocol=5)


def make_predict(model):
    """What a participant uploads to a code phase: a function of the features' DataFrame
    returning one `prediction` column on the same index."""

    def predict(features):
        values = model.predict(features[FEATURES])
        return pd.DataFrame({"prediction": np.clip(values, 0.0, 1.0)}, index=features.index)

    return predict


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} BUNDLE_DIR SAMPLES_DIR")
    generate(Path(sys.argv[1]), Path(sys.argv[2]))

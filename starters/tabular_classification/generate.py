"""Generate the data of the tabular classification starter, deterministically.

    python starters/tabular_classification/generate.py BUNDLE_DIR SAMPLES_DIR

Into BUNDLE_DIR (these go into the challenge zip):
  data/train.csv                    id, f00..f19, label   1,000 rows, for participants
  data/dev_features.csv             id, f00..f19            400 rows, for participants
  data/test_features.csv            id, f00..f19            600 rows, for participants
  annotations/dev_annotations.csv   id, label, split        split: dev_split
  annotations/test_annotations.csv  id, label, split        split: public (300) | private (300)
Into SAMPLES_DIR (kept out of the zip): sample_submission_dev.csv and
sample_submission_test.csv (id,label) from a logistic regression trained on data/train.csv.

Ids are a random permutation of 1..2000, so neither the id nor the row order tells which
test rows are public and which private.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

SEED = 20240101
N_FEATURES = 20
FEATURES = [f"f{i:02d}" for i in range(N_FEATURES)]
# Consecutive blocks of make_classification's (already shuffled) rows.
BLOCKS = {"train": 1000, "dev_split": 400, "public": 300, "private": 300}


def _write(frame, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.4f", lineterminator="\n")


def generate(bundle_dir: Path, samples_dir: Path) -> None:
    bundle_dir, samples_dir = Path(bundle_dir), Path(samples_dir)
    X, y = make_classification(
        n_samples=sum(BLOCKS.values()),
        n_features=N_FEATURES,
        n_informative=6,
        n_redundant=4,
        n_classes=3,
        n_clusters_per_class=2,
        class_sep=0.9,
        flip_y=0.03,
        random_state=SEED,
    )
    frame = pd.DataFrame(X, columns=FEATURES).round(4)
    frame.insert(0, "id", np.random.RandomState(SEED).permutation(len(frame)) + 1)
    frame["label"] = y
    frame["split"] = np.repeat(list(BLOCKS), list(BLOCKS.values()))

    def rows(*splits):
        return frame[frame["split"].isin(splits)].sort_values("id")

    train, dev, test = rows("train"), rows("dev_split"), rows("public", "private")
    _write(train[["id", *FEATURES, "label"]], bundle_dir / "data" / "train.csv")
    _write(dev[["id", *FEATURES]], bundle_dir / "data" / "dev_features.csv")
    _write(test[["id", *FEATURES]], bundle_dir / "data" / "test_features.csv")
    _write(dev[["id", "label", "split"]], bundle_dir / "annotations" / "dev_annotations.csv")
    _write(test[["id", "label", "split"]], bundle_dir / "annotations" / "test_annotations.csv")

    model = LogisticRegression(max_iter=1000).fit(train[FEATURES], train["label"])
    for phase, features in {"dev": dev, "test": test}.items():
        sample = pd.DataFrame({"id": features["id"], "label": model.predict(features[FEATURES])})
        _write(sample, samples_dir / f"sample_submission_{phase}.csv")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} BUNDLE_DIR SAMPLES_DIR")
    generate(Path(sys.argv[1]), Path(sys.argv[2]))

"""Generate the data of the out-of-core Parquet starter, deterministically, in seconds.

    python starters/numerai_parquet/generate.py BUNDLE_DIR SAMPLES_DIR

Numerai-shaped and large: 1,000,000 rows in 200 eras of 5,000, 20 int8 features binned
into 0..4, a target in {0, 0.25, 0.5, 0.75, 1} driven by five of them plus noise. Files
are Parquet in row groups of ROW_GROUP rows, so they can be read one group at a time.

Into BUNDLE_DIR (these go into the challenge zip):
  data/live_features.parquet        id, era (int16), feature_00..19 (int8)   public data
  annotations/live_targets.parquet  id, era (int16), target (float32)        hidden
Into SAMPLES_DIR: sample_submission_live.parquet (id, prediction float32), in the rows'
order, from the mean of the five informative features.

Nothing here is stored in git: starters/build.py runs it at build time.
"""

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261129
N_ERAS = 200
ROWS_PER_ERA = 5_000
N_ROWS = N_ERAS * ROWS_PER_ERA
N_FEATURES = 20
ROW_GROUP = 16_384
FEATURES = [f"feature_{i:02d}" for i in range(N_FEATURES)]


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No creation metadata that changes between builds: the zips stay byte-identical.
    pq.write_table(table, path, row_group_size=ROW_GROUP, compression="zstd", store_schema=False)


def generate(bundle_dir: Path, samples_dir: Path) -> None:
    bundle_dir, samples_dir = Path(bundle_dir), Path(samples_dir)
    rng = np.random.default_rng(SEED)
    features = rng.integers(0, 5, size=(N_ROWS, N_FEATURES), dtype=np.int8)
    era = np.repeat(np.arange(1, N_ERAS + 1, dtype=np.int16), ROWS_PER_ERA)
    ids = pa.array(np.char.add("n", np.char.zfill(np.arange(N_ROWS).astype(str), 9)))
    signal = features[:, :5].astype(np.float32).sum(axis=1)
    raw = signal + rng.normal(scale=6.0, size=N_ROWS).astype(np.float32)
    # Five equal-count bins, as Numerai's targets.
    cuts = np.quantile(raw, [0.2, 0.4, 0.6, 0.8])
    target = (np.searchsorted(cuts, raw).astype(np.float32) / 4).astype(np.float32)

    columns = {"id": ids, "era": pa.array(era)}
    columns.update({name: pa.array(features[:, j]) for j, name in enumerate(FEATURES)})
    _write(pa.table(columns), bundle_dir / "data" / "live_features.parquet")
    _write(
        pa.table({"id": ids, "era": pa.array(era), "target": pa.array(target)}),
        bundle_dir / "annotations" / "live_targets.parquet",
    )
    prediction = (signal / 20).astype(np.float32)
    _write(
        pa.table({"id": ids, "prediction": pa.array(prediction)}),
        samples_dir / "sample_submission_live.parquet",
    )


if __name__ == "__main__":
    generate(Path(sys.argv[1]), Path(sys.argv[2]))

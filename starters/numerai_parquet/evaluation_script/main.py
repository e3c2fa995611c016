"""Evaluation script of the out-of-core Parquet starter.

The annotation file and the participant's file are read together, BATCH rows at a time
(pyarrow), never whole: memory stays flat whatever the number of rows. Per era it keeps
six running sums (n, sum p, sum t, sum p², sum t², sum pt), enough for the per-era
Pearson correlation:

- Corr: mean over eras of the Pearson correlation between prediction and target;
- Sharpe: that mean divided by the per-era correlations' standard deviation (ddof=1);
- MaxDrawdown: the largest fall of the cumulative per-era correlation from its running
  peak (starting at 0), as a number <= 0.

The submission is a Parquet file with columns `id` and `prediction`, one row per row of
data/live_features.parquet, in the same order (as Numerai's files). Problems raise
ValueError with a message the participant can act on.
"""

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BATCH = 4_096
PHASE_SPLITS = {"live": ["live"]}
FEATURES_FILE = "data/live_features.parquet"


def _open_submission(path):
    try:
        submission = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"The submission is not a readable Parquet file: {exc}") from None
    missing = {"id", "prediction"} - set(submission.schema_arrow.names)
    if missing:
        raise ValueError(
            f"The submission lacks column(s) {', '.join(sorted(missing))}; it needs `id` and "
            "`prediction`."
        )
    return submission


class _Rows:
    """Exactly n rows at a time from a Parquet file, whatever its row groups."""

    def __init__(self, parquet, columns):
        self._batches = parquet.iter_batches(batch_size=BATCH, columns=columns, use_threads=False)
        self._pending = []
        self._have = 0

    def take(self, n):
        while self._have < n:
            batch = next(self._batches, None)
            if batch is None:
                break
            self._pending.append(batch)
            self._have += batch.num_rows
        table = pa.Table.from_batches(self._pending).combine_chunks() if self._pending else None
        if table is None:
            return None
        head, rest = table.slice(0, n), table.slice(n)
        self._pending = rest.to_batches() if rest.num_rows else []
        self._have = rest.num_rows
        return head


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    truth = pq.ParquetFile(test_annotation_file)
    submission = _open_submission(user_submission_file)
    expected, got = truth.metadata.num_rows, submission.metadata.num_rows
    if got != expected:
        raise ValueError(
            f"The submission has {got} rows; it needs {expected}, one per row of "
            f"{FEATURES_FILE}, in the same order."
        )
    rows = _Rows(submission, ["id", "prediction"])
    n = sp = st = spp = stt = spt = None
    offset = 0
    for batch in truth.iter_batches(
        batch_size=BATCH, columns=["id", "era", "target"], use_threads=False
    ):
        theirs = rows.take(batch.num_rows)
        same = pc.equal(batch.column("id"), theirs.column("id").cast(pa.string()))
        if not pc.all(same).as_py():
            first = pc.index(same, False).as_py()
            raise ValueError(
                f"Row {offset + first}: id {theirs.column('id')[first].as_py()!r} where "
                f"{batch.column('id')[first].as_py()!r} was expected; keep the rows of "
                f"{FEATURES_FILE} in their order."
            )
        p = theirs.column("prediction").to_numpy(zero_copy_only=False).astype(np.float64)
        if not np.isfinite(p).all():
            bad = int(np.flatnonzero(~np.isfinite(p))[0])
            raise ValueError(f"Row {offset + bad}: the prediction is not a finite number.")
        t = batch.column("target").to_numpy(zero_copy_only=False).astype(np.float64)
        era = batch.column("era").to_numpy(zero_copy_only=False).astype(np.int64)
        size = int(era.max()) + 1
        sums = [
            np.bincount(era, weights=w, minlength=size) for w in (None, p, t, p * p, t * t, p * t)
        ]
        if n is None:
            n, sp, st, spp, stt, spt = (np.zeros(size) for _ in range(6))
        if size > len(n):
            n, sp, st, spp, stt, spt = (
                np.pad(a, (0, size - len(a))) for a in (n, sp, st, spp, stt, spt)
            )
        for total, part in zip((n, sp, st, spp, stt, spt), sums, strict=True):
            total[: len(part)] += part
        offset += batch.num_rows

    present = n > 0
    n, sp, st, spp, stt, spt = (a[present] for a in (n, sp, st, spp, stt, spt))
    cov = n * spt - sp * st
    var = (n * spp - sp * sp) * (n * stt - st * st)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1)), 0.0)
    mean = float(corr.mean()) if len(corr) else 0.0
    std = float(corr.std(ddof=1)) if len(corr) > 1 else 0.0
    sharpe = mean / std if std > 0 and math.isfinite(std) else 0.0
    cumulative = np.concatenate([[0.0], np.cumsum(corr)])
    drawdown = float((cumulative - np.maximum.accumulate(cumulative)).min())
    scores = {"Corr": mean, "Sharpe": sharpe, "MaxDrawdown": drawdown}
    split = PHASE_SPLITS.get(phase_codename, ["live"])[0]
    print(f"Completed evaluation of {offset} rows in {len(corr)} eras")
    return {
        "result": [{split: scores}],
        "submission_result": {split: scores},
        "submission_metadata": {"rows": offset, "eras": len(corr)},
    }

"""Diagnostics of a model's validation predictions (DESIGN section 16), out of core.

The validation features (Parquet or CSV with `era` and `target` columns and the features)
may be far larger than memory: only the era, target and prediction columns are held whole
(a few bytes per row); the features stream through in batches of rows (pyarrow), and per
era only sums are kept (for each feature: sum, sum of squares, sum of products with the
predictions), from which every correlation follows. Correlations are Pearson's, per era:

- corr_mean, corr_std (ddof=1), corr_sharpe (mean/std), max_drawdown (the largest fall of
  the cumulative per-era correlation from its running peak, the peak starting at 0) and
  the per-era series, as the round scores are summarised (challenges.tournaments.metrics);
- feature_exposure per era: the largest absolute correlation of the predictions with any
  feature; feature_exposure_max (over eras) and feature_exposure_mean;
- example_corr per era and its mean, with the example predictions (same rows, same order,
  a `prediction` column);
- fnc per era and its mean (feature-neutral correlation: the correlation with the target of
  what is left of the predictions after a least-squares fit on all features and an
  intercept in the era), when asked: it keeps a features x features matrix per era, so it
  is refused above NEUTRAL_MAX_VALUES numbers.

Runs as a child process of the worker (`python -m workers.diagnostics FEATURES PREDICTIONS
[--example FILE] [--neutral]`, JSON on stdout) so that its memory is its own and measured;
no Django here, so a participant can run it too.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import resource
import sys

import numpy as np
import pyarrow as pa

ERA, TARGET, ID, PREDICTION = "era", "target", "id", "prediction"
CSV_BLOCK = 1 << 20  # bytes of CSV per block of rows
COLUMNS_AT_ONCE = 8  # Parquet features read together, per row group (memory vs calls)
NEUTRAL_MAX_VALUES = 16_000_000  # 256 eras x (features + 1)^2 float64: 128 MB


class DiagnosticsError(ValueError):
    """The validation data or the predictions cannot be diagnosed; the message says why."""


def _is_parquet(path: str) -> bool:
    return str(path).lower().endswith((".parquet", ".pq"))


def _parquet(path: str, *, like=None, dictionary: tuple[str, ...] = ()):
    """pyarrow's own Parquet reader, without pyarrow.parquet: that module imports pyarrow.fs
    and its cloud filesystems (S3, GCS, Azure, HDFS), about 13 MB of this child's peak, to
    read a local file. `like`, a reader of the same file, lends its metadata (parsed once:
    a row group x column footer of hundreds of columns is megabytes); `dictionary` names
    string columns read as indices into their distinct values (the era)."""
    from pyarrow._parquet import ParquetReader

    reader = ParquetReader()
    reader.open(
        str(path),
        pre_buffer=False,
        metadata=like.metadata if like is not None else None,
        read_dictionary=list(dictionary) or None,
    )
    return reader


def _columns(path: str) -> list[str]:
    if _is_parquet(path):
        return list(_parquet(path).schema_arrow.names)
    import pyarrow.csv as pacsv  # only for CSV: its import alone costs memory

    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
    return list(reader.schema.names)


def _feature_names(names: list[str]) -> list[str]:
    return [c for c in names if c.startswith("feature")] or [
        c for c in names if c not in (ERA, TARGET, ID, "data_type", "__index_level_0__")
    ]


def _csv_reader(path: str, names: list[str]):
    import pyarrow.csv as pacsv

    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK, use_threads=False),
        convert_options=pacsv.ConvertOptions(
            include_columns=names,
            column_types={ERA: pa.dictionary(pa.int32(), pa.string())} if ERA in names else {},
        ),
    )


def _row_blocks(path: str, features: list[str], at_once: int, parquet=None):
    """(era column, target, blocks) per block of rows; `blocks()` yields (first feature
    index, float32 some features x rows): a Parquet row group column group by column group,
    a CSV file block by block. Never more than one block of the features in memory."""
    if _is_parquet(path):
        parquet = _parquet(path, like=parquet, dictionary=(ERA,))
        head_columns = [parquet.column_name_idx(ERA), parquet.column_name_idx(TARGET)]
        indices = [parquet.column_name_idx(name) for name in features]
        for group in range(parquet.num_row_groups):
            head = parquet.read_row_group(group, column_indices=head_columns, use_threads=False)

            def blocks(group=group):
                for first in range(0, len(features), at_once):
                    columns = indices[first : first + at_once]
                    table = parquet.read_row_group(group, column_indices=columns, use_threads=False)
                    yield first, _as_block(table.columns)
                    del table

            yield head.column(ERA), _floats(head.column(TARGET)), blocks
        return
    for batch in _csv_reader(path, [ERA, TARGET, *features]):
        block = _as_block([batch.column(name) for name in features])
        yield batch.column(ERA), _floats(batch.column(TARGET)), lambda block=block: [(0, block)]


def _as_block(columns) -> np.ndarray:
    """Features x rows as float32: each feature's values contiguous."""
    rows = len(columns[0]) if columns else 0
    block = np.empty((len(columns), rows), dtype=np.float32)
    for j, column in enumerate(columns):
        block[j] = _numpy(column)
    return block


_NUMPY_TYPES = {"double": "float64", "float": "float32", "halffloat": "float16"}


def _numpy(column) -> np.ndarray:
    """A pyarrow array or chunked array as numpy, from its buffers: pyarrow's to_numpy goes
    through its pandas layer, whose import alone costs about 50 MB. Strings (eras) become
    an array of str; a missing value is refused."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [_chunk_numpy(chunk) for chunk in chunks]
    if not parts:
        return np.zeros(0)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _chunk_numpy(array) -> np.ndarray:
    if array.null_count:
        raise DiagnosticsError("The data has missing values; fill them before diagnosing.")
    name = str(array.type)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        dtype = np.dtype(_NUMPY_TYPES.get(name, name))
        return np.frombuffer(
            array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
        )
    return np.array([str(v) for v in array.to_pylist()])


def _floats(column) -> np.ndarray:
    return _numpy(column).astype(np.float64)


class _Column:
    """One numeric column of a file, taken n rows at a time in file order (streamed). CSV
    through the csv module: pyarrow's streaming CSV reader keeps tens of MB of read-ahead
    per open file, more than the whole column of a million rows as float64."""

    def __init__(self, path: str, name: str, what: str) -> None:
        self.what = what
        if _is_parquet(path):
            parquet = _parquet(path)
            if name not in parquet.schema_arrow.names:
                raise DiagnosticsError(f"The {what} have no {name!r} column.")
            batches = parquet.iter_batches(
                65536, range(parquet.num_row_groups), [parquet.column_name_idx(name)], False
            )
            self.chunks = (_floats(batch.column(0)) for batch in batches)
        else:
            self.file = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - read to the end
            reader = csv.reader(self.file)
            header = next(reader, [])
            if name not in header:
                raise DiagnosticsError(f"The {what} have no {name!r} column.")
            self.chunks = self._csv_chunks(reader, header.index(name))
        self.pending: list[np.ndarray] = []
        self.have = 0

    def _csv_chunks(self, reader, column: int):
        while True:
            rows = list(itertools.islice(reader, 2048))
            if not rows:
                self.file.close()
                return
            try:
                yield np.array([float(row[column]) for row in rows])
            except (ValueError, IndexError) as exc:
                raise DiagnosticsError(
                    f"The {self.what} have a value that is not a number: {exc}"
                ) from None

    def take(self, n: int) -> np.ndarray:
        while self.have < n:
            values = next(self.chunks, None)
            if values is None:
                raise DiagnosticsError(f"The {self.what} have fewer rows than the validation data.")
            self.pending.append(values)
            self.have += len(values)
        joined = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending = [joined[n:]] if len(joined) > n else []
        self.have -= n
        return joined[:n]

    def finish(self) -> None:
        if self.have or next(self.chunks, None) is not None:
            raise DiagnosticsError(f"The {self.what} have more rows than the validation data.")


class _PerEra:
    """Sums per era, growing as new eras appear."""

    def __init__(self, width: int = 0) -> None:
        self.width = width
        self.values = np.zeros((64, width)) if width else np.zeros(64)

    def add(self, codes_count: int, index, values) -> None:
        if codes_count > len(self.values):
            size = max(codes_count, 2 * len(self.values))
            grown = np.zeros((size, self.width)) if self.width else np.zeros(size)
            grown[: len(self.values)] = self.values
            self.values = grown
        self.values[index] += values

    def head(self, n: int) -> np.ndarray:
        if n > len(self.values):
            self.add(n, slice(0, 0), 0)
        return self.values[:n]


def _corr(n, sx, sy, sxx, syy, sxy):
    """Pearson's correlation from sums (arrays broadcast); NaN where a side is constant."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - sx * sy / n
        vx = sxx - sx * sx / n
        vy = syy - sy * sy / n
        out = cov / np.sqrt(vx * vy)
    return np.where((vx > 1e-12 * np.maximum(n, 1)) & (vy > 1e-12 * np.maximum(n, 1)), out, np.nan)


def summary(values: list[float]) -> dict[str, float]:
    """mean, std (ddof=1), Sharpe and max drawdown of per-era values (NaNs left out)."""
    kept = [v for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return {"mean": None, "std": None, "sharpe": None, "max_drawdown": None}
    n = len(kept)
    mean = sum(kept) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in kept) / (n - 1)) if n > 1 else 0.0
    peak = cumulative = drawdown = 0.0
    for value in kept:
        cumulative += value
        peak = max(peak, cumulative)
        drawdown = min(drawdown, cumulative - peak)
    sharpe = mean / std if std > 1e-12 else 0.0
    return {"mean": mean, "std": std, "sharpe": sharpe, "max_drawdown": drawdown + 0.0}


def diagnose(
    features_path: str,
    predictions_path: str,
    *,
    example_path: str | None = None,
    neutral: bool = False,
) -> dict:
    parquet = _parquet(features_path) if _is_parquet(features_path) else None
    names = list(parquet.schema_arrow.names) if parquet is not None else _columns(features_path)
    for needed in (ERA, TARGET):
        if needed not in names:
            raise DiagnosticsError(f"The validation data has no {needed!r} column.")
    features = _feature_names(names)
    if not features:
        raise DiagnosticsError("The validation data has no feature columns.")
    k = len(features)
    predictions = _Column(predictions_path, PREDICTION, "predictions")
    example = _Column(example_path, PREDICTION, "example predictions") if example_path else None
    labels: dict[str, int] = {}
    # Per era: rows and the sums of predictions p, target t, example e, their squares and
    # products; per era and feature f: sum f, f^2, p*f (and t*f plus X'X when neutral).
    scalars = {name: _PerEra() for name in ("n", "p", "t", "pp", "tt", "pt", "e", "ee", "pe")}
    sf, sff, spf = _PerEra(k), _PerEra(k), _PerEra(k)
    result: dict = {"features": k}
    if neutral and (k + 1) ** 2 * 256 > NEUTRAL_MAX_VALUES:
        result["fnc_refused"] = (
            f"Feature-neutral correlation keeps {k + 1}^2 numbers per era, too many for "
            f"{k} features; it is left out."
        )
        neutral = False
    gram = _PerEra((k + 1) ** 2) if neutral else None
    stf = _PerEra(k) if neutral else None
    rows = 0
    # Feature-neutral correlation needs every feature of a row at once.
    at_once = k if neutral else COLUMNS_AT_ONCE
    for era_column, target, blocks in _row_blocks(features_path, features, at_once, parquet):
        size = len(target)
        codes = _codes(era_column, labels)
        eras = len(labels)
        p = predictions.take(size)
        e = example.take(size) if example is not None else None
        rows += size
        for name, values in (
            ("n", np.ones(size)),
            ("p", p),
            ("t", target),
            ("pp", p * p),
            ("tt", target * target),
            ("pt", p * target),
        ):
            scalars[name].add(eras, slice(0, eras), np.bincount(codes, values, minlength=eras))
        if e is not None:
            for name, values in (("e", e), ("ee", e * e), ("pe", p * e)):
                scalars[name].add(eras, slice(0, eras), np.bincount(codes, values, minlength=eras))
        order = (
            None
            if size < 2 or np.all(codes[1:] >= codes[:-1])
            else np.argsort(codes, kind="stable")
        )
        c = codes if order is None else codes[order]
        p32 = (p if order is None else p[order]).astype(np.float32)
        t_sorted = target if order is None else target[order]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if size else np.zeros(0, int)
        here = c[starts]
        # Per era of this block of rows and per feature: sum f, p*f and f^2, one feature
        # at a time (products in float32 as read, summed in float64) through two buffers
        # of one column: no allocation per feature (reduceat would copy its input to
        # float64 each call), so the allocator's heap does not creep.
        sums = {acc: np.zeros((len(here), k)) for acc in (sf, spf, sff)}
        product, wide = np.empty(size, dtype=np.float32), np.empty(size)
        for first, block in blocks():
            if order is not None:
                block = block[:, order]
            for j, column in enumerate(block, start=first):
                for acc, factor in ((sf, None), (spf, p32), (sff, column)):
                    wide[:] = column if factor is None else np.multiply(column, factor, product)
                    np.add.reduceat(wide, starts, out=sums[acc][:, j])
            if neutral:
                _neutral_block(gram, stf, block, t_sorted, c, starts, here, eras, k)
            del block
        if size:
            for acc, values in sums.items():
                acc.add(eras, here, values)
    predictions.finish()
    if example is not None:
        example.finish()
    if not rows:
        raise DiagnosticsError("The validation data has no rows.")
    eras = len(labels)
    s = {name: acc.head(eras) for name, acc in scalars.items()}
    n = s["n"]
    corr = _corr(n, s["p"], s["t"], s["pp"], s["tt"], s["pt"])
    example_corr = _corr(n, s["p"], s["e"], s["pp"], s["ee"], s["pe"]) if example else None
    exposure = np.abs(
        _corr(
            n[:, None],
            s["p"][:, None],
            sf.head(eras),
            s["pp"][:, None],
            sff.head(eras),
            spf.head(eras),
        )
    )
    # NaN (a constant feature in an era) counts as no exposure; an era with none is NaN.
    per_era_exposure = np.nan_to_num(exposure, nan=-1.0).max(axis=1)
    per_era_exposure = np.where(per_era_exposure < 0, np.nan, per_era_exposure)
    fnc = None
    if neutral:
        fnc = _fnc(
            gram.head(eras).reshape(eras, k + 1, k + 1),
            stf.head(eras),
            n,
            s["p"],
            s["t"],
            s["pp"],
            s["tt"],
            s["pt"],
            spf.head(eras),
        )
    result.update(rows=rows, eras=eras)

    def clean(v):
        return None if v is None or not math.isfinite(v) else float(v)

    per_era = []
    for label, index in labels.items():
        item = {
            "era": label,
            "rows": int(n[index]),
            "corr": clean(corr[index]),
            "feature_exposure": clean(per_era_exposure[index]),
        }
        if example_corr is not None:
            item["example_corr"] = clean(example_corr[index])
        if fnc is not None:
            item["fnc"] = clean(fnc[index])
        per_era.append(item)
    stats = summary([row["corr"] for row in per_era])
    exposures = [row["feature_exposure"] for row in per_era if row["feature_exposure"] is not None]
    result.update(
        corr_mean=stats["mean"],
        corr_std=stats["std"],
        corr_sharpe=stats["sharpe"],
        max_drawdown=stats["max_drawdown"],
        feature_exposure_max=max(exposures) if exposures else None,
        feature_exposure_mean=sum(exposures) / len(exposures) if exposures else None,
    )
    if example_corr is not None:
        result["example_corr_mean"] = summary([r["example_corr"] for r in per_era])["mean"]
    if fnc is not None:
        result["fnc_mean"] = summary([r["fnc"] for r in per_era])["mean"]
    result["per_era"] = per_era
    return result


def _codes(era_column, labels: dict[str, int]) -> np.ndarray:
    """Each row's era as a number, in the order eras first appear in the file. (numpy, not
    pyarrow.compute: importing that costs more memory than a block of rows.) Eras come
    dictionary-encoded (Parquet's own dictionary, the CSV reader's): a few distinct names
    and an index per row, never a Python string per row."""
    chunks = era_column.chunks if isinstance(era_column, pa.ChunkedArray) else [era_column]
    parts = []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            if chunk.null_count:
                raise DiagnosticsError("The data has missing values; fill them before diagnosing.")
            values, names = _chunk_numpy(chunk.indices), chunk.dictionary.to_pylist()
        else:
            values, names = _chunk_numpy(chunk), None
            if values.dtype == object:
                values = values.astype(str)
        unique, first, inverse = np.unique(values, return_index=True, return_inverse=True)
        local = np.zeros(len(unique), dtype=np.int64)
        for position in np.argsort(first, kind="stable"):
            value = unique[position] if names is None else names[unique[position]]
            local[position] = labels.setdefault(str(value), len(labels))
        parts.append(local[inverse.ravel()])
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _neutral_block(gram, stf, block, t, c, starts, here, eras, k):
    # X'X needs every feature of a row at once: only CSV blocks and Parquet groups read
    # whole-width (COLUMNS_AT_ONCE >= features) get here with all columns.
    if block.shape[0] != k:
        raise DiagnosticsError("feature-neutral correlation needs all features per block")
    ends = np.r_[starts[1:], len(c)]
    for start, end, era in zip(starts, ends, here, strict=True):
        x = np.hstack([np.ones((end - start, 1)), block[:, start:end].T.astype(np.float64)])
        gram.add(eras, era, (x.T @ x).ravel())
        stf.add(eras, era, t[start:end] @ x[:, 1:])


def _fnc(gram, stf, n, sp, st, spp, stt, spt, spf):
    """Per era: the correlation with the target of the residual of the predictions after a
    least-squares fit on [1, features]: with b the fit, sum r = 0, sum r*t = sum p*t -
    b.X't and sum r^2 = sum p^2 - b.X'p."""
    out = np.full(len(n), np.nan)
    for e in range(len(n)):
        if n[e] < 2:
            continue
        xp = np.concatenate([[sp[e]], spf[e]])
        xt = np.concatenate([[st[e]], stf[e]])
        b = np.linalg.pinv(gram[e]) @ xp
        s_r = sp[e] - b @ gram[e][0]
        s_rt = spt[e] - b @ xt
        s_rr = spp[e] - b @ xp
        out[e] = _corr(n[e], s_r, st[e], s_rr, stt[e], s_rt)
    return out


def peak_kib() -> int:
    """This process's peak RSS since its exec: VmHWM belongs to the new address space, while
    ru_maxrss carries over the parent's size at fork (a large worker or bench process)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Diagnostics of validation predictions.")
    parser.add_argument("features")
    parser.add_argument("predictions")
    parser.add_argument("--example")
    parser.add_argument("--neutral", action="store_true")
    args = parser.parse_args(argv)
    # malloc's pool gives freed blocks back; mimalloc's keeps them: a child whose peak is
    # measured wants the former. This sets pyarrow's pool; Arrow's C++ Parquet reader also
    # takes buffers from the process default, which only ARROW_DEFAULT_MEMORY_POOL picks,
    # before pyarrow loads: run_diagnostics (workers.model_validation) starts this child
    # with it set to system (about 6 MB of the peak).
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        result = diagnose(
            args.features, args.predictions, example_path=args.example, neutral=args.neutral
        )
    except (DiagnosticsError, pa.ArrowException, OSError) as exc:
        json.dump({"error": str(exc)}, sys.stdout)
        return 2
    result["peak_mib"] = round(peak_kib() / 1024, 1)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

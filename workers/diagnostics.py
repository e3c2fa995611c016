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
import json
import math
import resource
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ERA, TARGET, ID, PREDICTION = "era", "target", "id", "prediction"
BATCH_ROWS = 8192
NEUTRAL_MAX_VALUES = 8_000_000  # eras x (features + 1)^2 float64: 64 MB


class DiagnosticsError(ValueError):
    """The validation data or the predictions cannot be diagnosed; the message says why."""


def _is_parquet(path: str) -> bool:
    return str(path).lower().endswith((".parquet", ".pq"))


def _columns(path: str) -> list[str]:
    if _is_parquet(path):
        return list(pq.read_schema(path).names)
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
    return list(reader.schema.names)


def _read_columns(path: str, names: list[str], types: dict | None = None) -> pa.Table:
    if _is_parquet(path):
        return pq.read_table(path, columns=names)
    options = pacsv.ConvertOptions(include_columns=names, column_types=types or {})
    return pacsv.read_csv(path, convert_options=options)


def _batches(path: str, names: list[str]):
    """The feature columns in batches of rows, never the whole file."""
    if _is_parquet(path):
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=names)
        return
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=4 << 20),
        convert_options=pacsv.ConvertOptions(include_columns=names),
    )
    yield from reader


def _prediction_column(path: str, what: str) -> np.ndarray:
    names = _columns(path)
    if PREDICTION not in names:
        raise DiagnosticsError(f"The {what} have no {PREDICTION!r} column (columns: {names[:10]}).")
    column = _read_columns(path, [PREDICTION]).column(PREDICTION)
    return column.to_numpy().astype(np.float64)


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
    names = _columns(features_path)
    for needed in (ERA, TARGET):
        if needed not in names:
            raise DiagnosticsError(f"The validation data has no {needed!r} column.")
    features = [c for c in names if c.startswith("feature")] or [
        c for c in names if c not in (ERA, TARGET, ID, "data_type", "__index_level_0__")
    ]
    if not features:
        raise DiagnosticsError("The validation data has no feature columns.")
    head = _read_columns(features_path, [ERA, TARGET], {ERA: pa.string()})
    era_column = head.column(ERA)
    if not pa.types.is_string(era_column.type):
        era_column = pc.cast(era_column, pa.string())
    encoded = pc.dictionary_encode(era_column.combine_chunks())
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    labels = [str(v) for v in encoded.dictionary.to_pylist()]
    target = head.column(TARGET).to_numpy().astype(np.float64)
    del head, era_column, encoded
    rows, eras, k = len(codes), len(labels), len(features)
    prediction = _prediction_column(predictions_path, "predictions")
    if len(prediction) != rows:
        raise DiagnosticsError(
            f"The predictions have {len(prediction)} rows; the validation data has {rows}."
        )

    def era_sums(x, y):
        return (
            np.bincount(codes, weights=x, minlength=eras),
            np.bincount(codes, weights=y, minlength=eras),
            np.bincount(codes, weights=x * x, minlength=eras),
            np.bincount(codes, weights=y * y, minlength=eras),
            np.bincount(codes, weights=x * y, minlength=eras),
        )

    n = np.bincount(codes, minlength=eras).astype(np.float64)
    sp, st, spp, stt, spt = era_sums(prediction, target)
    corr = _corr(n, sp, st, spp, stt, spt)
    result: dict = {"rows": rows, "eras": eras, "features": k}
    example_corr = None
    if example_path:
        example = _prediction_column(example_path, "example predictions")
        if len(example) != rows:
            raise DiagnosticsError(
                f"The example predictions have {len(example)} rows; the validation data has {rows}."
            )
        _sp, se, _spp, see, spe = era_sums(prediction, example)
        example_corr = _corr(n, sp, se, spp, see, spe)
        del example
    if neutral and eras * (k + 1) ** 2 > NEUTRAL_MAX_VALUES:
        result["fnc_refused"] = (
            f"Feature-neutral correlation needs {eras} x {k + 1}^2 numbers, more than "
            f"{NEUTRAL_MAX_VALUES}; it is left out."
        )
        neutral = False

    # The features, streamed: per era and feature, sum, sum of squares, sum with predictions.
    sf = np.zeros((eras, k))
    sff = np.zeros((eras, k))
    spf = np.zeros((eras, k))
    if neutral:
        gram = np.zeros((eras, k + 1, k + 1))
        stf = np.zeros((eras, k))
    offset = 0
    for batch in _batches(features_path, features):
        size = batch.num_rows
        block = np.empty((size, k), dtype=np.float32)
        for j, column in enumerate(batch.columns):
            block[:, j] = column.to_numpy(zero_copy_only=False)
        del batch
        c = codes[offset : offset + size]
        p = prediction[offset : offset + size]
        if size > 1 and not np.all(c[1:] >= c[:-1]):
            order = np.argsort(c, kind="stable")
            c, p, block = c[order], p[order], block[order]
        else:
            order = None
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if size else np.array([], int)
        here = c[starts]
        sf[here] += np.add.reduceat(block, starts, axis=0, dtype=np.float64)
        spf[here] += np.add.reduceat(
            block * p[:, None].astype(np.float32), starts, axis=0, dtype=np.float64
        )
        sff[here] += np.add.reduceat(block * block, starts, axis=0, dtype=np.float64)
        if neutral:
            t = target[offset : offset + size]
            if order is not None:
                t = t[order]
            ends = np.r_[starts[1:], size]
            for start, end, e in zip(starts, ends, here, strict=True):
                x = np.hstack([np.ones((end - start, 1)), block[start:end].astype(np.float64)])
                gram[e] += x.T @ x
                stf[e] += t[start:end] @ x[:, 1:]
        offset += size
        del block
    if offset != rows:
        raise DiagnosticsError(f"The features stream ended after {offset} of {rows} rows.")
    exposure = np.abs(_corr(n[:, None], sp[:, None], sf, spp[:, None], sff, spf))
    # NaN (a constant feature in an era) counts as no exposure; an era with none is NaN.
    per_era_exposure = np.nan_to_num(exposure, nan=-1.0).max(axis=1)
    per_era_exposure = np.where(per_era_exposure < 0, np.nan, per_era_exposure)
    fnc = _fnc(gram, stf, n, sp, st, spp, stt, spt, spf) if neutral else None

    def clean(v):
        return None if v is None or not math.isfinite(v) else float(v)

    per_era = []
    for e, label in enumerate(labels):
        item = {
            "era": label,
            "rows": int(n[e]),
            "corr": clean(corr[e]),
            "feature_exposure": clean(per_era_exposure[e]),
        }
        if example_corr is not None:
            item["example_corr"] = clean(example_corr[e])
        if fnc is not None:
            item["fnc"] = clean(fnc[e])
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Diagnostics of validation predictions.")
    parser.add_argument("features")
    parser.add_argument("predictions")
    parser.add_argument("--example")
    parser.add_argument("--neutral", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = diagnose(
            args.features, args.predictions, example_path=args.example, neutral=args.neutral
        )
    except (DiagnosticsError, pa.ArrowException, OSError) as exc:
        json.dump({"error": str(exc)}, sys.stdout)
        return 2
    result["peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

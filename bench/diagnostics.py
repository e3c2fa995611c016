"""Model diagnostics out of core (DESIGN section 16): 1,000,000 validation rows, 200 eras
and 500 int8 features with example predictions, generated here at build time (like the
Parquet starter), diagnosed by the child the worker runs (`python -m workers.diagnostics`).

The child is started by the worker's own launcher (workers.model_validation.run_diagnostics:
same command, same environment). diagnostics_s: its wall time; diagnostics_peak_mib: the
child's own peak RSS over its whole run, VmHWM read by the child itself from
/proc/self/status at its end and reported as peak_mib (not ru_maxrss, which counts the
parent's size at the fork), which must stay within a quarter of the features loaded whole
(rows x features bytes as int8)."""

from __future__ import annotations

import time
from pathlib import Path

ROWS, ERAS, FEATURES = 1_000_000, 200, 500
CHUNK = 50_000


def build_validation(
    out_dir: Path, *, rows: int = ROWS, eras: int = ERAS, features: int = FEATURES
):
    """(features.parquet, predictions.csv, example.csv), written chunk by chunk."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / "validation.parquet", out_dir / "predictions.csv", out_dir / "example.csv")
    rng = np.random.default_rng(2026)
    names = [f"feature_{j:04d}" for j in range(features)]
    per_era = rows // eras
    writer = pred_sink = example_sink = None
    try:
        for start in range(0, rows, CHUNK):
            size = min(CHUNK, rows - start)
            index = np.arange(start, start + size)
            block = rng.integers(0, 5, size=(size, features), dtype=np.int8)
            signal = block[:, :10].mean(axis=1) / 4.0
            target = np.clip(signal + rng.normal(0, 0.2, size), 0, 1)
            prediction = np.clip(signal + rng.normal(0, 0.3, size), 0, 1)
            example = np.clip(signal + rng.normal(0, 0.25, size), 0, 1)
            ids = pa.array([f"r{i}" for i in index])
            table = pa.table(
                {
                    "id": ids,
                    "era": pa.array([f"era{i // per_era + 1:04d}" for i in index]),
                    **{name: block[:, j] for j, name in enumerate(names)},
                    "target": target,
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(paths[0], table.schema)
            writer.write_table(table)
            for sink_name, values in (("pred", prediction), ("example", example)):
                part = pa.table({"id": ids, "prediction": values})
                if sink_name == "pred":
                    pred_sink = pred_sink or pacsv.CSVWriter(paths[1], part.schema)
                    pred_sink.write_table(part)
                else:
                    example_sink = example_sink or pacsv.CSVWriter(paths[2], part.schema)
                    example_sink.write_table(part)
    finally:
        for sink in (writer, pred_sink, example_sink):
            if sink is not None:
                sink.close()
    return paths


def measure_diagnostics(report, out_dir: Path) -> None:
    t = time.perf_counter()
    features, predictions, example = build_validation(out_dir)
    build_s = time.perf_counter() - t
    from workers.model_validation import run_diagnostics  # after django.setup()

    t = time.perf_counter()
    result = run_diagnostics(features=features, predictions=predictions, example=example)
    wall = time.perf_counter() - t
    if "error" in result or "peak_mib" not in result:
        raise RuntimeError(f"diagnostics failed: {result.get('error')}")
    whole_mib = ROWS * FEATURES / 1024 / 1024
    report.add(
        "diagnostics_build_s", build_s, "s", f"{ROWS} rows, {ERAS} eras, {FEATURES} int8 features"
    )
    report.add(
        "diagnostics_s", wall, "s", "python -m workers.diagnostics, with example predictions"
    )
    report.add(
        "diagnostics_peak_mib",
        result["peak_mib"],
        "MiB",
        "the child's own peak RSS over its run (its VmHWM, which it reports as peak_mib)",
    )
    report.add(
        "diagnostics_peak_over_features",
        result["peak_mib"] / whole_mib,
        "x",
        f"peak / the features loaded whole ({whole_mib:.0f} MiB as int8)",
        decimals=3,
    )

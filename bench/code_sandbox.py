"""Code submissions: what the sandbox adds to a model's own run (DESIGN.md section 8:
<= 150 ms). No database: the same call the worker makes (workers.code_runner), on data the
size of the Numerai-style starter's live eras, against the same work done in-process."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from workers.code_runner import check_predictions, run_predict
from workers.harness.evalserver_predict import (
    read_features,
    validate_predictions,
    write_predictions,
)
from workers.sandbox.runner import Limits

ROWS, FEATURES = 1800, 20
MODEL = """
import numpy as np
import pandas as pd

def predict(features):
    values = model.predict(features[columns])
    return pd.DataFrame({"prediction": np.clip(values, 0, 1)}, index=features.index)
"""


def _files(folder: Path) -> tuple[Path, Path]:
    rng = np.random.RandomState(0)
    columns = [f"feature_{i:02d}" for i in range(FEATURES)]
    X = rng.randint(0, 5, size=(ROWS, FEATURES))
    frame = pd.DataFrame(
        X, columns=columns, index=pd.Index([f"n{i:06d}" for i in range(ROWS)], name="id")
    )
    frame.to_parquet(folder / "live.parquet")
    model = Ridge(alpha=10.0).fit(frame, rng.uniform(size=ROWS))
    namespace = {"__name__": "bench_model", "model": model, "columns": columns}
    exec(textwrap.dedent(MODEL), namespace)  # noqa: S102 - our own source
    (folder / "model.pkl").write_bytes(cloudpickle.dumps(namespace["predict"]))
    return folder / "model.pkl", folder / "live.parquet"


def _bare(model: Path, features: Path, output: Path) -> None:
    """The model's own run, in-process: what the sandbox does, minus the sandbox."""
    frame = read_features(str(features))
    with model.open("rb") as fh:
        predict = cloudpickle.load(fh)
    checked = validate_predictions(predict(frame), ids=frame.index, prediction_range=(0.0, 1.0))
    write_predictions(checked, str(output))


def _sandboxed(model: Path, features: Path, output: Path, limits: Limits) -> None:
    outcome = run_predict(
        model_file=model,
        features_file=features,
        output_file=output,
        limits=limits,
        prediction_range=(0.0, 1.0),
    )
    check_predictions(
        outcome, predictions_file=output, features_file=features, prediction_range=(0.0, 1.0)
    )
    if not outcome.ok:
        raise RuntimeError(f"bench model failed: {outcome.failure}: {outcome.message}")


def sandbox_overhead(runs: int) -> dict[str, float]:
    """Medians in ms over `runs` (after warm-up runs): bare, sandboxed, and the difference."""
    folder = Path(tempfile.mkdtemp(prefix="evalserver-bench-code-"))
    try:
        model, features = _files(folder)
        limits = Limits(time_limit_s=60, memory_mb=2048, cpus=1, max_file_mb=1024)
        timings: dict[str, list[float]] = {"bare": [], "sandbox": []}
        for i in range(runs + 3):
            for name, call in (
                ("bare", lambda: _bare(model, features, folder / "bare.csv")),
                ("sandbox", lambda: _sandboxed(model, features, folder / "out.csv", limits)),
            ):
                started = time.perf_counter()
                call()
                if i >= 3:  # the first runs start the warm parent and fill caches
                    timings[name].append(time.perf_counter() - started)
        bare = statistics.median(timings["bare"]) * 1000
        sandbox = statistics.median(timings["sandbox"]) * 1000
        return {"bare_ms": bare, "sandbox_ms": sandbox, "overhead_ms": sandbox - bare}
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""`python -m workers.predict` runs a model in the platform's sandbox on a participant's
machine: same limits, same checks, same failure class, non-zero exit when it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.workers import models

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def features(tmp_path) -> Path:
    path = tmp_path / "live.parquet"
    frame = pd.DataFrame(
        {"id": [f"r{i}" for i in range(50)], "f": [float(i % 10) for i in range(50)]}
    )
    frame.set_index("id").to_parquet(path)
    return path


def run_cli(tmp_path, model_source: str | bytes, features: Path, *args: str):
    model = tmp_path / "model.pkl"
    if isinstance(model_source, bytes):
        model.write_bytes(model_source)
    else:
        models.write_model(model, model_source)
    # No Django settings, no database: a participant's machine has neither.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['django'] = None\n"
            "from workers.predict import main; sys.exit(main())",
            "--model",
            str(model),
            "--features",
            str(features),
            "--output",
            str(tmp_path / "predictions.csv"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_a_good_model_exits_zero_and_writes_checked_predictions(tmp_path, features):
    done = run_cli(tmp_path, models.GOOD, features, "--prediction-range", "0", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: 50 predictions written" in done.stdout
    written = pd.read_csv(tmp_path / "predictions.csv")
    assert list(written.columns) == ["id", "prediction"]
    assert written["id"].tolist() == [f"r{i}" for i in range(50)]
    assert written["prediction"].tolist() == [(i % 10) / 10.0 for i in range(50)]


@pytest.mark.parametrize(
    ("source", "args", "kind", "fragment"),
    [
        (models.SERIES, (), "invalid_output", "returned pandas.Series, not a pandas DataFrame"),
        (models.RAISES, (), "exception", "predict() raised ValueError: feature 'g' is missing"),
        (models.LOOP, ("--time-limit-s", "2"), "timeout", "time limit of 2 s"),
        (models.MEMORY, ("--memory-mb", "512"), "memory", "memory limit of 512 MB"),
        (
            models.GOOD,
            ("--prediction-range", "0", "0.5"),
            "invalid_output",
            "outside the allowed range [0, 0.5]",
        ),
    ],
)
def test_a_failing_model_exits_non_zero_printing_its_failure_class(
    tmp_path, features, source, args, kind, fragment
):
    done = run_cli(tmp_path, source, features, *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAILED [{kind}]: " in done.stdout
    assert fragment in done.stdout


def test_a_model_needing_a_missing_module_names_it_and_the_runtime(tmp_path, features):
    done = run_cli(tmp_path, models.model_needing_a_missing_module(), features)
    assert done.returncode == 1
    assert "FAILED [environment]: " in done.stdout
    assert "'lightgbm_not_installed_here'" in done.stdout
    assert f"Python {sys.version.split()[0]}" in done.stdout and "pandas " in done.stdout


def test_a_traceback_of_the_models_exception_is_printed(tmp_path, features):
    done = run_cli(tmp_path, models.RAISES, features)
    assert "Traceback" in done.stderr and "feature 'g' is missing" in done.stderr


def test_missing_files_are_a_usage_error(tmp_path, features):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.predict",
            "--model",
            "nope.pkl",
            "--features",
            str(features),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2 and "nope.pkl: no such file" in done.stderr


def test_a_phase_with_extra_data_calls_predict_with_it(tmp_path, features):
    extra = tmp_path / "extra.csv"
    pd.DataFrame({"id": ["r0"], "scale": [20.0]}).to_csv(extra, index=False)
    source = """
    import pandas as pd

    def predict(features, extra):
        scale = float(extra.loc["r0", "scale"])
        return pd.DataFrame({"prediction": features["f"] / scale}, index=features.index)
    """
    done = run_cli(tmp_path, source, features, "--extra", str(extra))
    assert done.returncode == 0, done.stdout + done.stderr
    assert pd.read_csv(tmp_path / "predictions.csv")["prediction"].max() == 9 / 20

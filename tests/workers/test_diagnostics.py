"""Diagnostics of validation predictions (workers.diagnostics) against a hand computation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from workers import diagnostics


def _pearson(x, y):
    return float(np.corrcoef(x, y)[0, 1])


@pytest.fixture
def small(tmp_path):
    rng = np.random.default_rng(7)
    rows = 60
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(rows)],
            "era": [f"era{i // 20 + 1}" for i in range(rows)],
            "feature_a": rng.integers(0, 5, rows).astype("int8"),
            "feature_b": rng.integers(0, 5, rows).astype("int8"),
            "target": rng.random(rows),
        }
    )
    predictions = pd.DataFrame({"id": frame["id"], "prediction": rng.random(rows)})
    example = pd.DataFrame({"id": frame["id"], "prediction": rng.random(rows)})
    paths = {name: tmp_path / f"{name}" for name in ("features.parquet", "p.csv", "e.csv")}
    # Row groups of 7 rows: blocks that straddle eras.
    frame.to_parquet(paths["features.parquet"], index=False, row_group_size=7)
    predictions.to_csv(paths["p.csv"], index=False)
    example.to_csv(paths["e.csv"], index=False)
    return frame, predictions, example, paths


def test_diagnostics_match_a_hand_computation(small, monkeypatch):
    frame, predictions, example, paths = small
    monkeypatch.setattr(diagnostics, "COLUMNS_AT_ONCE", 1)
    got = diagnostics.diagnose(
        str(paths["features.parquet"]),
        str(paths["p.csv"]),
        example_path=str(paths["e.csv"]),
        neutral=True,
    )
    frame = frame.assign(p=predictions["prediction"], e=example["prediction"])
    corrs, exposures, examples, fncs = [], [], [], []
    for _era, part in frame.groupby("era", sort=False):
        corrs.append(_pearson(part["p"], part["target"]))
        exposures.append(max(abs(_pearson(part["p"], part[f])) for f in ("feature_a", "feature_b")))
        examples.append(_pearson(part["p"], part["e"]))
        x = np.column_stack([np.ones(len(part)), part[["feature_a", "feature_b"]].to_numpy(float)])
        beta, *_ = np.linalg.lstsq(x, part["p"].to_numpy(), rcond=None)
        fncs.append(_pearson(part["p"].to_numpy() - x @ beta, part["target"]))
    assert [r["era"] for r in got["per_era"]] == ["era1", "era2", "era3"]
    assert [r["corr"] for r in got["per_era"]] == pytest.approx(corrs, abs=1e-9)
    assert got["corr_mean"] == pytest.approx(np.mean(corrs))
    assert got["corr_std"] == pytest.approx(np.std(corrs, ddof=1))
    assert got["corr_sharpe"] == pytest.approx(np.mean(corrs) / np.std(corrs, ddof=1))
    cumulative = np.cumsum(corrs)
    peak = np.maximum.accumulate(np.r_[0.0, cumulative])[1:]
    assert got["max_drawdown"] == pytest.approx(min(0.0, float(np.min(cumulative - peak))))
    assert [r["feature_exposure"] for r in got["per_era"]] == pytest.approx(exposures, abs=1e-6)
    assert got["feature_exposure_max"] == pytest.approx(max(exposures), abs=1e-6)
    assert got["feature_exposure_mean"] == pytest.approx(np.mean(exposures), abs=1e-6)
    assert got["example_corr_mean"] == pytest.approx(np.mean(examples), abs=1e-9)
    assert [r["fnc"] for r in got["per_era"]] == pytest.approx(fncs, abs=1e-6)


def test_csv_validation_data_gives_the_same_diagnostics(small, tmp_path):
    frame, _p, _e, paths = small
    frame.to_csv(tmp_path / "features.csv", index=False)
    from_csv = diagnostics.diagnose(
        str(tmp_path / "features.csv"), str(paths["p.csv"]), neutral=True
    )
    from_parquet = diagnostics.diagnose(
        str(paths["features.parquet"]), str(paths["p.csv"]), neutral=True
    )
    assert from_csv["fnc_mean"] == pytest.approx(from_parquet["fnc_mean"], abs=1e-6)
    assert from_csv["corr_mean"] == pytest.approx(from_parquet["corr_mean"])
    assert from_csv["feature_exposure_mean"] == pytest.approx(
        from_parquet["feature_exposure_mean"], abs=1e-6
    )


def test_predictions_of_the_wrong_length_are_refused_by_the_child(small, tmp_path):
    _f, predictions, _e, paths = small
    predictions.head(10).to_csv(tmp_path / "short.csv", index=False)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.diagnostics",
            str(paths["features.parquet"]),
            str(tmp_path / "short.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "fewer rows" in json.loads(proc.stdout)["error"]


def test_rows_out_of_era_order_give_the_same_per_era_figures(small, tmp_path):
    frame, predictions, _e, paths = small
    order = np.random.default_rng(3).permutation(len(frame))
    frame.iloc[order].to_parquet(tmp_path / "shuffled.parquet", index=False, row_group_size=9)
    predictions.iloc[order].to_csv(tmp_path / "shuffled.csv", index=False)
    shuffled = diagnostics.diagnose(
        str(tmp_path / "shuffled.parquet"), str(tmp_path / "shuffled.csv")
    )
    ordered = diagnostics.diagnose(str(paths["features.parquet"]), str(paths["p.csv"]))
    by_era = {row["era"]: row for row in shuffled["per_era"]}
    for row in ordered["per_era"]:
        assert by_era[row["era"]]["corr"] == pytest.approx(row["corr"])
        assert by_era[row["era"]]["feature_exposure"] == pytest.approx(row["feature_exposure"])

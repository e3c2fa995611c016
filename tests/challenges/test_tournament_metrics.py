"""Per-era metrics of a tournament round, against a hand computation."""

from __future__ import annotations

import math

import pytest

from challenges.tournaments.metrics import (
    PerEraError,
    cumulative_standing,
    era_metrics,
    per_era_from_output,
)


def test_it_computes_the_per_era_metrics_as_by_hand():
    # Four eras: 0.1, -0.2, 0.3, 0.0
    #   mean = 0.2 / 4 = 0.05
    #   deviations 0.05, -0.25, 0.25, -0.05; squares sum 0.0025 + 0.0625 + 0.0625 + 0.0025
    #   = 0.13; std (ddof=1) = sqrt(0.13 / 3) = 0.2081666
    #   sharpe = 0.05 / 0.2081666 = 0.2401922
    #   cumulative 0.1, -0.1, 0.2, 0.2; running peak 0.1, 0.1, 0.2, 0.2 (from 0)
    #   drawdowns 0, -0.2, 0, 0 -> max drawdown -0.2
    metrics = era_metrics([0.1, -0.2, 0.3, 0.0])
    assert metrics["corr_mean"] == pytest.approx(0.05)
    assert metrics["corr_std"] == pytest.approx(math.sqrt(0.13 / 3))
    assert metrics["corr_std"] == pytest.approx(0.2081666, abs=1e-7)
    assert metrics["sharpe"] == pytest.approx(0.2401922, abs=1e-7)
    assert metrics["max_drawdown"] == pytest.approx(-0.2)


def test_it_counts_a_fall_below_zero_from_the_start_as_drawdown():
    # cumulative -0.1, -0.3, -0.2; the peak stays 0 -> max drawdown -0.3
    metrics = era_metrics([-0.1, -0.2, 0.1])
    assert metrics["max_drawdown"] == pytest.approx(-0.3)
    assert metrics["corr_mean"] == pytest.approx(-0.2 / 3)


def test_it_gives_zero_std_and_sharpe_for_one_era_or_identical_eras():
    assert era_metrics([0.3]) == {
        "corr_mean": 0.3,
        "corr_std": 0.0,
        "sharpe": 0.0,
        "max_drawdown": 0.0,
    }
    assert era_metrics([0.2, 0.2, 0.2])["sharpe"] == 0.0


def test_it_refuses_no_eras_and_non_finite_scores():
    with pytest.raises(PerEraError):
        era_metrics([])
    with pytest.raises(PerEraError):
        era_metrics([0.1, float("nan")])


def test_it_reads_per_era_scores_from_either_shape_of_evaluate_output():
    assert per_era_from_output({"submission_metadata": {"per_era": {"e1": 0.1, "e2": "0.2"}}}) == {
        "e1": 0.1,
        "e2": 0.2,
    }
    # The Numerai starter's shape: {split: {era: corr}}, the first split.
    numerai = {"submission_metadata": {"per_era_corr": {"public": {"43": 0.05}, "private": {}}}}
    assert per_era_from_output(numerai) == {"43": 0.05}
    with pytest.raises(PerEraError, match="per_era"):
        per_era_from_output({"submission_metadata": {"phase": "x"}})


def test_it_averages_the_rounds_a_team_was_scored_in():
    a = {"corr_mean": 0.1, "corr_std": 0.2, "sharpe": 0.5, "max_drawdown": -0.1}
    b = {"corr_mean": 0.3, "corr_std": 0.1, "sharpe": 3.0, "max_drawdown": 0.0}
    standing = cumulative_standing([a, None, b])
    assert standing["rounds"] == 2
    assert standing["corr_mean"] == pytest.approx(0.2)
    assert standing["sharpe"] == pytest.approx(1.75)
    assert cumulative_standing([None])["corr_mean"] is None

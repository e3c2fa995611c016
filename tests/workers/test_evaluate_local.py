"""evaluate_local runs a bundle's evaluate() the way a worker does and prints the numbers."""

from __future__ import annotations

import math

import pytest
from django.core.management.base import CommandError

from starters.build import sample_submissions
from tests.workers.pipeline_helpers import run_local


def test_every_starter_sample_scores_on_every_phase(starter_zips, starter_dir):
    seen = 0
    for starter, phases in sample_submissions(starter_dir).items():
        for phase, submission in phases.items():
            result = run_local(starter_zips[starter], phase, submission)["result"]
            assert result, (starter, phase)
            for split, scores in result.items():
                assert scores and all(math.isfinite(v) for v in scores.values()), (
                    starter,
                    phase,
                    split,
                )
            seen += 1
    assert seen >= 4


def test_a_malformed_submission_fails_with_the_scripts_message(starter_zips, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("nothing,useful\n1,2\n")
    with pytest.raises(CommandError, match="exception: evaluate\\(\\) raised ValueError"):
        run_local(starter_zips["tabular_classification"], "dev", bad)


def test_an_unknown_phase_is_named(starter_zips, tmp_path):
    sub = tmp_path / "s.csv"
    sub.write_text("id,label\n")
    with pytest.raises(CommandError, match="No phase 'nope' in the bundle \\(phases: dev, test\\)"):
        run_local(starter_zips["tabular_classification"], "nope", sub)

"""evaluate_local runs a bundle's evaluate() the way a worker does and prints the numbers."""

from __future__ import annotations

import io
import json
import math

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from starters.build import sample_submissions
from tests.workers.pipeline_helpers import run_local, script_bundle


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


def test_a_result_lacking_a_label_is_accepted_with_a_warning(tmp_path):
    source = (
        "def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):\n"
        "    return {'result': [{'main': {'Score': 1.0}}, {'hidden': {'Score': 1, 'Other': 2}}]}\n"
    )
    bundle = tmp_path / "lacking.zip"
    bundle.write_bytes(script_bundle(source))
    submission = tmp_path / "guess.txt"
    submission.write_text("42\n")
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "evaluate_local",
        str(bundle),
        "--phase",
        "probe",
        "--submission",
        str(submission),
        "--json",
        stdout=out,
        stderr=err,
    )
    assert json.loads(out.getvalue())["result"]["main"] == {"Score": 1.0}
    assert "Warning: Split 'main' lacks label(s) Other" in err.getvalue()

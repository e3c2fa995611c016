"""CodaLab and Codabench scoring and ingestion programs run in the evaluate() sandbox, laid
out as their formats expect, through `evaluate_local` (what a worker runs, once)."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from tests.challenges.codalab_factory import (
    V1_SCORE_PY2,
    code_zip,
    python27_path,
    result_zip,
    v1_bundle,
    v2_bundle,
)
from tests.workers.pipeline_helpers import run_local


@pytest.fixture
def files(tmp_path):
    def write(name: str, data: bytes | str):
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        path.chmod(0o644)
        return path

    tmp_path.chmod(0o755)
    return write


def test_a_v1_program_gets_program_input_output_and_its_scores_txt_is_read(files):
    out = run_local(files("v1.zip", v1_bundle()), "1", files("sub.zip", result_zip("a b c x")))
    # "errors:1" has no space after the colon; "Never written" is an empty cell.
    assert out["result"] == {"results": {"Accuracy": 0.75, "Errors": 1.0}}
    # v1 shows detailed results by default; the page sanitises the HTML, not the runtime.
    assert out["submission_result"]["detailed_results"]["results"].startswith("<p>3 of 4 right")


def test_the_phase_is_chosen_by_number_or_name_and_scored_on_its_own_data(files):
    bundle = files("v1.zip", v1_bundle(folders=True, top_folder="comp"))
    sub = files("sub.zip", result_zip("a a b b"))
    assert run_local(bundle, "Final", sub)["result"]["results"]["Accuracy"] == 1.0
    assert run_local(bundle, "2", sub)["result"]["results"]["Errors"] == 0.0


def test_codabench_programs_find_the_fixed_app_paths_per_task(files):
    out = run_local(files("v2.zip", v2_bundle()), "feedback", files("answer.txt", "a b c x"))
    # A single-file result submission; scores.txt on "easy", scores.json on "hard".
    assert out["result"] == {
        "easy": {"Accuracy": 0.75, "Hits": 3.0, "Mean accuracy": 0.625},
        "hard": {"Accuracy": 0.5, "Hits": 2.0, "Mean accuracy": 0.625},
    }
    assert out["submission_result"]["detailed_results"] == {
        "easy": "<b>3 hits</b>",
        "hard": "<b>2 hits</b>",
    }


def test_a_code_submission_goes_through_the_ingestion_program_then_scoring(files):
    out = run_local(files("v2.zip", v2_bundle()), "code-phase", files("model.zip", code_zip()))
    assert out["result"]["code"]["Accuracy"] == 1.0


def test_a_failing_program_fails_the_evaluation_with_its_stderr(files):
    broken = v1_bundle(score_source="import sys\nsys.exit('no answer file here')\n")
    with pytest.raises(CommandError, match="scoring program exited with status 1"):
        run_local(files("v1.zip", broken), "1", files("sub.zip", result_zip("a")))


def test_a_python_2_program_runs_under_the_mapped_interpreter(files, settings):
    settings.CODALAB_IMAGE_MAP = {"codalab/codalab-legacy:py37": python27_path()}
    bundle = files("py2.zip", v1_bundle(score_source=V1_SCORE_PY2))
    out = run_local(bundle, "1", files("sub.zip", result_zip("a b c d")))
    assert out["result"] == {"results": {"Accuracy": 1.0}}

"""CodaLab (v1) and Codabench (v2) competition.yaml bundles load through the same loader,
problem table and services as EvalAI's."""

from __future__ import annotations

import io

import pytest

from challenges.bundle import BundleError, load_bundle
from challenges.bundle.codalab_runtime import parse_scores_text, to_labels
from challenges.models import ChallengePhaseSplit
from challenges.services.bundles import bundle_validate, challenge_load_bundle
from tests.challenges.codalab_factory import (
    V1_SCORE_PY2,
    manifest_of,
    v1_bundle,
    v2_bundle,
)


def load(data: bytes, **kw):
    return load_bundle(io.BytesIO(data), **kw)


def problems_of(data: bytes, **kw) -> list:
    with pytest.raises(BundleError) as caught:
        load(data, **kw)
    return caught.value.errors


def test_a_codalab_v1_bundle_maps_numbered_phases_and_anchored_columns():
    with load(v1_bundle()) as bundle:
        spec = bundle.spec
    assert [(p.id, p.name, p.codename) for p in spec.phases] == [
        (1, "Development", "development"),
        (2, "Final", "final"),
    ]
    # A v1 phase ends where the next one starts.
    assert spec.phases[0].end_date == spec.phases[1].start_date
    assert spec.phases[0].resources == {"time_limit_s": 120}
    assert spec.phases[1].max_submissions == 3
    # Columns reached through the *RESULTS anchor, ordered by rank; `sort: asc` kept.
    board = spec.leaderboards[0]
    assert board.labels == ["Accuracy", "Errors", "Never written"]
    assert board.default_order_by == "Accuracy"
    assert board.metadata == {"Errors": {"sort_ascending": True}}
    assert spec.phase_splits[0].leaderboard_decimal_precision == 4
    assert spec.description == "<h1>Overview</h1>"
    assert spec.terms_and_conditions == "<p>Be nice.</p>"
    manifest = manifest_of(spec)
    assert manifest["format"] == 1
    dev = manifest["phases"]["development"]["tasks"][0]
    assert dev["scoring"]["command"] == "python $program/score.py $input $output"
    files = spec.evaluation_script.files
    assert files[f"{dev['reference']}/truth.txt"] == b"a b c d"
    assert "competition.yaml" in files  # the original yaml is kept with the challenge


def test_folders_named_like_the_zips_and_a_top_folder_load_the_same_package():
    with load(v1_bundle()) as zipped, load(v1_bundle(folders=True, top_folder="comp")) as folders:
        a, b = zipped.spec.evaluation_script.files, folders.spec.evaluation_script.files
    assert {k: v for k, v in a.items() if k != "codalab.json"} == {
        k: v for k, v in b.items() if k != "codalab.json"
    }


def test_a_codabench_v2_bundle_maps_tasks_to_splits_and_phases_to_their_tasks():
    with load(v2_bundle()) as bundle:
        spec = bundle.spec
    assert [s.codename for s in spec.dataset_splits] == ["easy", "hard", "code"]
    by_phase = {}
    for ps in spec.phase_splits:
        by_phase.setdefault(ps.challenge_phase_id, []).append(ps.dataset_split_id)
    assert by_phase == {1: [1, 2], 2: [3]}
    assert spec.phases[0].max_submissions_per_day == 5
    assert spec.image == "logo.png"
    assert "Be *nice*." in spec.terms_and_conditions
    manifest = manifest_of(spec)
    assert manifest["detailed_results"] is True
    code_task = manifest["phases"]["code-phase"]["tasks"][0]
    assert code_task["ingestion"]["command"] == "python /app/program/ingest.py"
    assert code_task["input"].startswith("data/")
    columns = manifest["phases"]["feedback"]["columns"]
    assert columns[2]["computation"] == "avg" and columns[2]["computation_indexes"] == [0]


def test_a_python_2_program_is_refused_with_its_file_and_line():
    (problem,) = problems_of(v1_bundle(score_source=V1_SCORE_PY2))
    assert problem.file == "scoring_program.zip/score.py"
    assert problem.line == 3
    assert problem.key == "phases.1.scoring_program"
    assert "Python 2" in problem.message and "CODALAB_IMAGE_MAP" in problem.message


def test_a_python_2_program_loads_when_a_python_2_interpreter_is_mapped(python27):
    images = {"codalab/codalab-legacy:py37": python27}
    with load(v1_bundle(score_source=V1_SCORE_PY2), images=images) as bundle:
        assert manifest_of(bundle.spec)["interpreter"] == python27


def test_a_missing_program_is_refused_naming_the_key_and_what_is_there():
    errors = problems_of(v1_bundle(drop=("scoring_program.zip",)))
    assert {p.key for p in errors} == {"phases.1.scoring_program", "phases.2.scoring_program"}
    message = errors[0].message
    assert "scoring_program.zip is not in the bundle" in message
    assert "dev_reference.zip" in message and "competition.yaml" in message
    assert errors[0].line is not None


def test_a_missing_data_zip_is_refused_with_its_line():
    errors = problems_of(v2_bundle(drop=("hard_reference.zip",)))
    assert errors[0].key == "tasks[1].reference_data"
    assert errors[0].line == 19


def test_an_image_the_default_cannot_stand_in_for_is_refused():
    (problem,) = problems_of(v1_bundle(docker_image="myorg/r-scorer:1"))
    assert problem.key == "docker_image" and "myorg/r-scorer:1" in problem.message


def test_a_mapped_image_is_accepted():
    images = {"myorg/r-scorer:1": "python3"}
    with load(v1_bundle(docker_image="myorg/r-scorer:1"), images=images) as bundle:
        assert manifest_of(bundle.spec)["interpreter"] == "python3"


def test_a_program_without_metadata_is_refused_listing_its_files():
    from tests.challenges.codalab_factory import zip_bytes

    data = v1_bundle(drop=("scoring_program.zip",))
    import zipfile

    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("scoring_program.zip", zip_bytes({"score.py": "print(1)\n"}))
    errors = problems_of(buf.getvalue())
    assert "no metadata file" in errors[0].message and "score.py" in errors[0].message


def test_a_programs_requirements_go_to_the_scripts_environment():
    import zipfile

    from tests.challenges.codalab_factory import V1_SCORE, zip_bytes

    buf = io.BytesIO(v1_bundle(drop=("scoring_program.zip",)))
    with zipfile.ZipFile(buf, "a") as zf:
        program = {
            "metadata": "command: python $program/score.py $input $output\n",
            "score.py": V1_SCORE,
            "requirements.txt": "numpy==2.1.3\n",
        }
        zf.writestr("scoring_program.zip", zip_bytes(program))
    with load(buf.getvalue()) as bundle:
        assert bundle.spec.evaluation_script.requirements == "numpy==2.1.3"


def test_scores_txt_lines_parse_with_or_without_the_space():
    assert parse_scores_text("accuracy: 0.5\nerrors:3\nnot a score\nDuration: x\n") == {
        "accuracy": 0.5,
        "errors": 3.0,
    }


def test_a_computed_column_aggregates_its_columns_over_the_tasks_and_a_missing_key_is_empty():
    columns = [
        {"key": "acc", "label": "Accuracy", "index": 0},
        {"key": "f1", "label": "F1", "index": 1},
        {
            "key": "avg",
            "label": "Mean",
            "index": 2,
            "computation": "avg",
            "computation_indexes": [0],
        },
        {
            "key": "sum",
            "label": "Sum",
            "index": 3,
            "computation": "sum",
            "computation_indexes": [0, 1],
        },
    ]
    rows = to_labels(columns, {"a": {"acc": 0.5, "f1": 1.0}, "b": {"acc": 1.0}})
    assert rows["a"] == {"Accuracy": 0.5, "F1": 1.0, "Mean": 0.75, "Sum": 2.5}
    assert rows["b"] == {"Accuracy": 1.0, "Mean": 0.75, "Sum": 2.5}  # no F1: an empty cell


def test_validate_reports_only_the_open_end_for_a_clean_bundle_of_either_format():
    for data in (v1_bundle(), v2_bundle(top_folder="bench")):
        (warning,) = bundle_validate(source=io.BytesIO(data))
        assert warning.severity == "warning" and "no end" in warning.message


@pytest.mark.django_db
def test_load_challenge_stores_phases_splits_and_the_program_package(users, host_teams):
    result = challenge_load_bundle(
        source=io.BytesIO(v2_bundle()), user=users["alice"], host_team=host_teams["alice"]
    )
    challenge = result.challenge
    assert challenge.title == "Toy Codabench competition"
    assert list(challenge.phases.order_by("bundle_id").values_list("codename", flat=True)) == [
        "feedback",
        "code-phase",
    ]
    splits = ChallengePhaseSplit.objects.filter(phase__challenge=challenge)
    assert sorted(s.dataset_split.codename for s in splits) == ["code", "easy", "hard"]
    assert result.script.source == "competition.yaml"


@pytest.fixture
def python27() -> str:
    from tests.challenges.codalab_factory import python27_path

    return python27_path()


def test_validate_challenge_names_a_python_2_programs_file_and_line(tmp_path):
    from django.core.management import call_command

    bundle = tmp_path / "py2.zip"
    bundle.write_bytes(v1_bundle(score_source=V1_SCORE_PY2))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("validate_challenge", str(bundle), stdout=out)
    assert exit_info.value.code == 1
    assert "scoring_program.zip/score.py:3" in out.getvalue()


@pytest.mark.django_db
def test_load_challenge_loads_a_codalab_bundle(tmp_path, users, host_teams):
    from django.core.management import call_command

    from challenges.models import Challenge

    bundle = tmp_path / "v1.zip"
    bundle.write_bytes(v1_bundle(top_folder="competition"))
    call_command(
        "load_challenge",
        str(bundle),
        "--host-team",
        host_teams["alice"].name,
        "--user",
        "alice",
        stdout=io.StringIO(),
    )
    assert Challenge.objects.get().title == "Toy CodaLab competition"

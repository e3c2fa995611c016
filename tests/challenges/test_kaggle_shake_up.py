"""Kaggle's shake-up against a hand-made leaderboard: the move of each team from its public
rank once the private split is revealed, in the API, the CSV and the page."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client
from django.utils import timezone

from challenges.models import AuditEvent, ChallengePhase
from tests.challenges.leaderboard_helpers import board_url, load, scored, team

pytestmark = pytest.mark.django_db

# team: (public Acc, private Acc, public submission?)
BOARD = {
    "A": (0.90, 0.60, True),
    "B": (0.80, 0.85, True),
    "C": (0.70, 0.90, True),
    "D": (0.60, 0.70, True),
    # Never public: not on the public leaderboard, ranked on the private one (its best
    # public-split submission stands in for the final picks it did not make).
    "E": (0.95, 0.50, False),
}
# Worked by hand. Public ranks: A 1, B 2, C 3, D 4 (E hidden). Private: C 0.90 -> 1,
# B 0.85 -> 2, D 0.70 -> 3, A 0.60 -> 4, E 0.50 -> 5. Move = public rank - private rank.
EXPECTED = [
    # team, private rank, public rank, move
    ("C", 1, 3, 2),
    ("B", 2, 2, 0),
    ("D", 3, 4, 1),
    ("A", 4, 1, -3),
    ("E", 5, None, None),
]


@pytest.fixture
def challenge(users, host_teams, django_user_model):
    challenge = load(users, host_teams["alice"], phase={"private_splits_reveal": "at_end"})
    for name, (public, private, shown) in BOARD.items():
        owner = users["charlie"] if name == "A" else None
        scored(
            challenge,
            team(django_user_model, challenge, name, user=owner),
            {"Acc": public},
            hidden={"Acc": private},
            is_public=shown,
        )
    return challenge


def reveal(challenge):
    ChallengePhase.objects.filter(challenge=challenge).update(
        end_date=timezone.now() - dt.timedelta(minutes=1)
    )


def test_there_is_no_shake_up_before_the_reveal(api, challenge):
    shake = board_url(challenge, "hidden", tail="shake-up/")
    assert api("alice").get(shake).status_code == 404
    assert api(None).get(shake).status_code == 404  # the split is hidden: as missing
    rows = api(None).get(board_url(challenge, "main")).json()["rows"]
    assert "move" not in rows[0]


def test_the_revealed_leaderboard_shows_each_teams_move_from_its_public_rank(api, challenge):
    reveal(challenge)
    rows = api(None).get(board_url(challenge, "hidden")).json()["rows"]
    assert [(r["team"], r["rank"], r["public_rank"], r["move"]) for r in rows] == EXPECTED
    # The public split itself has no moves.
    assert "move" not in api(None).get(board_url(challenge, "main")).json()["rows"][0]


def test_the_shake_up_endpoint_gives_both_ranks_and_scores_of_every_team(api, challenge):
    reveal(challenge)
    body = api("charlie").get(board_url(challenge, "hidden", tail="shake-up/")).json()
    assert (body["public_split"], body["private_split"]) == ("main", "hidden")
    got = [
        (t["team"], t["private_rank"], t["public_rank"], t["move"], t["public_score"],
         t["private_score"])
        for t in body["teams"]
    ]  # fmt: skip
    assert got == [
        (name, private_rank, public_rank, move, BOARD[name][0] if BOARD[name][2] else None,
         BOARD[name][1])
        for name, private_rank, public_rank, move in EXPECTED
    ]  # fmt: skip
    assert [t["is_own_team"] for t in body["teams"]] == [False, False, False, True, False]


def test_the_hosts_csv_carries_the_public_rank_and_the_move(api, challenge):
    reveal(challenge)
    text = api("alice").get(board_url(challenge, "hidden").rstrip("/") + ".csv").content.decode()
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["team"], r["public_rank"], r["move"]) for r in table] == [
        (name, "" if public is None else str(public), "" if move is None else str(move))
        for name, _rank, public, move in EXPECTED
    ]


def test_the_shake_up_page_plots_public_against_private_for_every_team(challenge, users):
    reveal(challenge)
    client = Client()
    client.force_login(users["charlie"])
    leaderboard = client.get(
        f"/challenges/{challenge.pk}/phases/dev/leaderboard/hidden/"
    ).content.decode()
    assert 'data-move="2"' in leaderboard and 'data-move="-3"' in leaderboard
    assert "▲ 2" in leaderboard and "▼ 3" in leaderboard
    page = client.get(f"/challenges/{challenge.pk}/phases/dev/leaderboard/hidden/shake-up/")
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count("<circle") == 4  # E has no public score to plot
    for name in "ABCD":
        assert f'data-team="{name}"' in text
    assert 'class="best-dot own"' in text  # charlie's team A
    # Before the reveal, or on the public split, there is nothing to show: back to the board.
    public = client.get(f"/challenges/{challenge.pk}/phases/dev/leaderboard/main/shake-up/")
    assert public.status_code == 302


def test_a_host_reveals_a_by_host_split_after_the_end_and_the_shake_up_follows(
    api, users, host_teams, django_user_model
):
    challenge = load(users, host_teams["alice"], phase={"private_splits_reveal": "by_host"})
    for name, (public, private, shown) in BOARD.items():
        scored(
            challenge,
            team(django_user_model, challenge, name),
            {"Acc": public},
            hidden={"Acc": private},
            is_public=shown,
        )
    host = Client()
    host.force_login(users["alice"])
    reveal_url = f"/host/challenges/{challenge.pk}/phases/dev/leaderboard/hidden/reveal/"
    # Not before the end.
    early = host.post(reveal_url, follow=True).content.decode()
    assert "can be revealed, once, after the phase ends" in early
    reveal(challenge)  # the phase ends: by_host still hides the split
    assert api(None).get(board_url(challenge, "hidden")).status_code == 404
    page = host.get(f"/challenges/{challenge.pk}/phases/dev/leaderboard/hidden/").content
    assert b"Reveal the private leaderboard" in page
    # A participant may not reveal it.
    charlie = Client()
    charlie.force_login(users["charlie"])
    assert charlie.post(reveal_url).status_code == 403
    host.post(reveal_url)
    rows = api(None).get(board_url(challenge, "hidden")).json()["rows"]
    assert [(r["team"], r["rank"], r["public_rank"], r["move"]) for r in rows] == EXPECTED
    event = AuditEvent.objects.get(action=AuditEvent.Action.SPLIT_VISIBILITY)
    assert event.target == "dev/hidden" and event.details == {"revealed": True}

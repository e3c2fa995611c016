"""Kaggle's mechanics: final picks under a cap, and a private split revealed at the end
of the phase, ranked by each team's final picks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from challenges.models import ChallengePhase, Submission
from tests.challenges.leaderboard_helpers import board_url, load, scored, submit_row, team, teams_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenge(users, host_teams):
    return load(
        users,
        host_teams["alice"],
        phase={"max_final_submissions": 2, "private_splits_reveal": "at_end"},
    )


@pytest.fixture
def teams(challenge, users, django_user_model):
    return {
        "A": team(django_user_model, challenge, "A", user=users["charlie"]),
        "B": team(django_user_model, challenge, "B"),
    }


def pick(api, submission, is_final=True, who="charlie"):
    return api(who).patch(
        f"/api/v1/submissions/{submission.pk}/", {"is_final": is_final}, format="json"
    )


def end_phase(challenge):
    ChallengePhase.objects.filter(challenge=challenge).update(
        end_date=timezone.now() - dt.timedelta(minutes=1)
    )


def test_final_picks_are_capped_per_team_and_phase(api, challenge, teams):
    subs = [scored(challenge, teams["A"], {"Acc": x}) for x in (0.1, 0.2, 0.3)]
    assert pick(api, subs[0]).json()["is_final"] is True
    assert pick(api, subs[1]).status_code == 200
    refused = pick(api, subs[2])
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "already picked 2 final submission(s)" in detail and "the most allowed (2)" in detail
    assert f"{subs[0].pk}, {subs[1].pk}" in detail and refused.json()["field"] == "is_final"
    # Unpicking frees a place.
    assert pick(api, subs[0], is_final=False).status_code == 200
    assert pick(api, subs[2]).status_code == 200
    assert set(Submission.objects.filter(is_final=True).values_list("pk", flat=True)) == {
        subs[1].pk,
        subs[2].pk,
    }


def test_only_finished_submissions_of_ones_own_team_can_be_picked(api, challenge, teams, users):
    waiting = submit_row(challenge, teams["A"])
    refused = pick(api, waiting)
    assert refused.status_code == 400 and "only finished submissions" in refused.json()["detail"]
    theirs = scored(challenge, teams["B"], {"Acc": 0.5})
    assert pick(api, theirs).status_code == 404  # charlie cannot even see it
    assert pick(api, theirs, who="alice").status_code == 403  # the host sees it, may not pick


def test_phases_without_a_cap_have_no_final_picks(api, users, host_teams, django_user_model):
    challenge = load(users, host_teams["alice"])
    own = scored(
        challenge, team(django_user_model, challenge, "A", user=users["charlie"]), {"Acc": 1}
    )
    refused = pick(api, own)
    assert (
        refused.status_code == 400
        and "max_final_submissions is not set" in refused.json()["detail"]
    )


def test_the_private_split_stays_hidden_until_the_phase_ends(api, challenge, teams):
    scored(challenge, teams["A"], {"Acc": 0.5})
    assert api("charlie").get(board_url(challenge, "hidden")).status_code == 404
    end_phase(challenge)
    body = api(None).get(board_url(challenge, "hidden")).json()
    assert body["revealed"] is True and body["visibility"] == 3 and body["scope"] == "final"
    assert teams_of(api(None).get(board_url(challenge, "hidden"))) == ["A"]


def test_the_revealed_split_ranks_final_picks_or_the_best_public_entries(api, challenge, teams):
    a, b = teams["A"], teams["B"]
    # A: best on main is a1, but A picks a2, whose private score is lower than a1's.
    a1 = scored(challenge, a, {"Acc": 0.9}, hidden={"Acc": 0.95})
    a2 = scored(challenge, a, {"Acc": 0.8}, hidden={"Acc": 0.60})
    pick(api, a2)
    # B picks nothing: its best two on the public split (b1, b2) count, b3 does not,
    # although b3 is best on the private split.
    scored(challenge, b, {"Acc": 0.70}, hidden={"Acc": 0.50})  # b1
    scored(challenge, b, {"Acc": 0.65}, hidden={"Acc": 0.70})  # b2
    scored(challenge, b, {"Acc": 0.10}, hidden={"Acc": 0.99})  # b3
    end_phase(challenge)
    got = api(None).get(board_url(challenge, "hidden")).json()["rows"]
    assert [(r["rank"], r["team"], r["scores"][0]) for r in got] == [(1, "B", 0.70), (2, "A", 0.60)]
    # Hosts may still look at every submission on it.
    everything = api("alice").get(board_url(challenge, "hidden"), {"scope": "all"}).json()["rows"]
    assert [(r["team"], r["scores"][0]) for r in everything] == [("B", 0.99), ("A", 0.95)]
    assert a1.pk != a2.pk


def test_hosts_see_the_final_ranking_before_the_reveal(api, challenge, teams):
    a = teams["A"]
    scored(challenge, a, {"Acc": 0.9}, hidden={"Acc": 0.95})
    picked = scored(challenge, a, {"Acc": 0.8}, hidden={"Acc": 0.60})
    pick(api, picked)
    default = api("alice").get(board_url(challenge, "hidden")).json()
    assert default["scope"] == "all" and default["rows"][0]["scores"][0] == 0.95
    final = api("alice").get(board_url(challenge, "hidden"), {"scope": "final"}).json()
    assert final["rows"][0]["scores"][0] == 0.60


def test_without_the_reveal_option_a_private_split_stays_hidden(
    api, users, host_teams, django_user_model
):
    challenge = load(users, host_teams["alice"], phase={"max_final_submissions": 2})
    scored(challenge, team(django_user_model, challenge, "A"), {"Acc": 0.5})
    end_phase(challenge)
    assert api(None).get(board_url(challenge, "hidden")).status_code == 404


def test_the_challenge_page_lists_the_private_split_once_revealed(api, challenge, teams):
    def splits():
        body = api("charlie").get(f"/api/v1/challenges/{challenge.pk}/").json()
        return [s["dataset_split"] for s in body["phases"][0]["splits"]]

    assert splits() == ["main"]
    end_phase(challenge)
    assert splits() == ["main", "hidden"]


def test_a_revealed_private_split_shows_the_team_its_own_score_everywhere(
    api, client, challenge, teams, users
):
    """The leaderboard, the submission page, the team's list and the API ask one rule
    (split_is_listed_to): once the leaderboard shows the private score, so do they."""
    own = scored(challenge, teams["A"], {"Acc": 0.5}, hidden={"Acc": 0.25})
    client.force_login(users["charlie"])

    def splits_in_api() -> list[str]:
        body = api("charlie").get(f"/api/v1/submissions/{own.pk}/").json()
        return [r["split"] for r in body["results"]]

    assert splits_in_api() == ["main"]
    assert "<td>hidden</td>" not in client.get(f"/submissions/{own.pk}/").content.decode()
    end_phase(challenge)
    assert sorted(splits_in_api()) == ["hidden", "main"]
    hidden = next(
        r
        for r in api("charlie").get(f"/api/v1/submissions/{own.pk}/").json()["results"]
        if r["split"] == "hidden"
    )
    assert hidden["scores"] == {"Acc": 0.25}
    page = client.get(f"/submissions/{own.pk}/").content.decode()
    assert "<td>hidden</td>" in page and "0.25" in page
    listed = client.get(f"/challenges/{challenge.pk}/submissions/").content.decode()
    assert "<td>hidden</td>" in listed
    # Another team's submission stays out of reach after the reveal.
    theirs = scored(challenge, teams["B"], {"Acc": 0.4}, hidden={"Acc": 0.125})
    assert api("charlie").get(f"/api/v1/submissions/{theirs.pk}/").status_code == 404

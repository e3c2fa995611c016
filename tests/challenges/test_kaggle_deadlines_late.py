"""Kaggle's entry deadline (v1 API, pages, EvalAI's participate) and late submissions
(scored on every split, shown to their team, never ranked nor picked), on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from challenges.models import (
    Challenge,
    ChallengeParticipation,
    ChallengePhase,
    ParticipantTeam,
    ParticipantTeamMember,
    Submission,
)
from challenges.services.participation import participant_team_create
from tests.challenges.leaderboard_helpers import board_url, finish, load, scored, team
from tests.workers.pipeline_helpers import submit

pytestmark = pytest.mark.django_db

PAST = dt.datetime(2024, 5, 6, 7, 8, tzinfo=dt.UTC)


@pytest.fixture
def challenge(users, host_teams):
    return load(
        users,
        host_teams["alice"],
        phase={
            "allow_late_submissions": True,
            "max_final_submissions": 1,
            "private_splits_reveal": "at_end",
        },
        entry_deadline="2098-01-01 00:00:00",
    )


def close_entry(challenge):
    Challenge.objects.filter(pk=challenge.pk).update(entry_deadline=PAST)


def end_phase(challenge):
    ChallengePhase.objects.filter(challenge=challenge).update(
        end_date=timezone.now() - dt.timedelta(minutes=1)
    )


# ---------------------------------------------------------------- entry deadline


def test_the_bundle_keys_set_the_deadlines_and_a_late_one_is_a_warning(challenge, users):
    assert challenge.entry_deadline == dt.datetime(2098, 1, 1, tzinfo=dt.UTC)
    assert challenge.team_merger_deadline is None
    assert challenge.phases.get().allow_late_submissions is True
    assert challenge.final_submission_deadline == challenge.end_date  # no phase end_date
    assert not [w for w in challenge.load_warnings if "deadline" in w["key"]]


def test_no_team_takes_part_through_the_api_after_the_entry_deadline(api, challenge, users):
    before = participant_team_create(name="Early", creator=users["charlie"])
    body = {"team": before.pk, "accept_terms": True}
    url = f"/api/v1/challenges/{challenge.pk}/participate/"
    assert api("charlie").post(url, body, format="json").status_code == 201
    late = participant_team_create(name="Late", creator=users["bob"])
    close_entry(challenge)
    refused = api("bob").post(url, {"team": late.pk, "accept_terms": True}, format="json")
    assert refused.status_code == 400
    assert (
        "entry deadline of 'Leaderboard probe' passed on 2024-05-06 07:08 UTC"
        in (refused.json()["detail"])
    )
    assert not ChallengeParticipation.objects.filter(team=late).exists()
    # A team that entered before still answers 200 (it takes part already).
    assert api("charlie").post(url, body, format="json").status_code == 200


def test_no_one_joins_a_team_taking_part_after_the_entry_deadline(
    api, challenge, users, django_user_model
):
    entered = team(django_user_model, challenge, "Entered", user=users["charlie"])
    close_entry(challenge)
    refused = api("bob").post(
        "/api/v1/teams/join/", {"invitation_code": entered.invitation_code}, format="json"
    )
    assert refused.status_code == 400
    assert (
        "'Entered' takes part in 'Leaderboard probe', whose entry deadline passed"
        in (refused.json()["detail"])
    )
    assert not ParticipantTeamMember.objects.filter(team=entered, user=users["bob"]).exists()
    # A team taking part in no closed challenge still takes members.
    free = participant_team_create(name="Free", creator=users["charlie"])
    joined = api("bob").post(
        "/api/v1/teams/join/", {"invitation_code": free.invitation_code}, format="json"
    )
    assert joined.status_code == 200


def test_the_participate_page_refuses_after_the_entry_deadline_and_says_when(challenge, users):
    team_ = participant_team_create(name="Paged", creator=users["charlie"])
    close_entry(challenge)
    client = Client()
    client.force_login(users["charlie"])
    page = client.get(f"/challenges/{challenge.pk}/")
    text = page.content.decode()
    assert "2024-05-06 07:08 UTC" in text and "data-entry-closed" in text
    answer = client.post(
        f"/challenges/{challenge.pk}/participate/",
        {"team": team_.pk, "accept_terms": "on"},
        follow=True,
    )
    assert "entry deadline of &#x27;Leaderboard probe&#x27; passed on 2024-05-06 07:08 UTC" in (
        answer.content.decode()
    )
    assert not ChallengeParticipation.objects.filter(team=team_).exists()


def test_evalais_participate_refuses_after_the_entry_deadline(api, challenge, users):
    team_ = participant_team_create(name="Cli", creator=users["charlie"])
    close_entry(challenge)
    refused = api("charlie").post(
        f"/api/challenges/challenge/{challenge.pk}/participant_team/{team_.pk}/"
    )
    assert refused.status_code == 400
    assert (
        "entry deadline" in refused.json()["error"]
        and "2024-05-06 07:08" in (refused.json()["error"])
    )


def test_the_challenge_page_shows_the_deadlines_in_the_readers_time_zone(
    challenge, users, settings
):
    Challenge.objects.filter(pk=challenge.pk).update(
        team_merger_deadline=dt.datetime(2097, 6, 1, 12, 0, tzinfo=dt.UTC)
    )
    settings.TIME_ZONE = "Asia/Tokyo"
    text = Client().get(f"/challenges/{challenge.pk}/").content.decode()
    assert "2098-01-01 09:00 JST" in text  # the entry deadline, 00:00 UTC
    assert "2097-06-01 21:00 JST" in text  # the merger deadline


# ---------------------------------------------------------------- late submissions


def test_late_submissions_are_scored_shown_to_their_team_and_never_ranked(
    api, challenge, users, django_user_model
):
    own = team(django_user_model, challenge, "Own", user=users["charlie"])
    on_time = scored(challenge, own, {"Acc": 0.5}, hidden={"Acc": 0.4})
    end_phase(challenge)
    answer = submit(api("charlie"), challenge, "dev", "late", name="late.txt")
    assert answer.status_code == 201, answer.content
    late = Submission.objects.get(pk=answer.json()["id"])
    assert late.is_late is True
    finish(late, {"main": {"Acc": 0.99}, "hidden": {"Acc": 0.98}})
    seen = api("charlie").get(f"/api/v1/submissions/{late.pk}/").json()
    assert seen["is_late"] is True and seen["status"] == "finished"
    # Scored on every split (the private one is revealed now that the phase ended).
    assert {r["split"]: r["scores"]["Acc"] for r in seen["results"]} == {
        "main": 0.99,
        "hidden": 0.98,
    }
    # Never ranked: both leaderboards keep the on-time submission.
    for split, value in (("main", 0.5), ("hidden", 0.4)):
        rows = api(None).get(board_url(challenge, split)).json()["rows"]
        assert [(r["team"], r["scores"][0]) for r in rows] == [("Own", value)], split
    history = api(None).get(board_url(challenge, "main", tail="history/")).json()["points"]
    assert [p["value"] for p in history] == [0.5]
    # Never a final pick.
    refused = api("charlie").patch(
        f"/api/v1/submissions/{late.pk}/", {"is_final": True}, format="json"
    )
    assert refused.status_code == 400 and "late submissions" in refused.json()["detail"]
    assert on_time.pk != late.pk
    # The host's export says which were late.
    client = Client()
    client.force_login(users["alice"])
    csv = client.get(f"/host/challenges/{challenge.pk}/submissions/?format=csv").content.decode()
    header, *lines = csv.strip().splitlines()
    assert header.split(",")[-3:] == ["is_late", "merged_from_team", "results"]
    assert any(line.startswith(f"{late.pk},") and ",True,," in line for line in lines)


def test_without_the_phase_key_submissions_after_the_end_are_refused(
    api, users, host_teams, django_user_model
):
    challenge = load(users, host_teams["alice"])
    team(django_user_model, challenge, "Own", user=users["charlie"])
    end_phase(challenge)
    refused = submit(api("charlie"), challenge, "dev", "late", name="late.txt")
    assert refused.status_code == 400 and "closed at" in refused.json()["detail"]
    assert not Submission.objects.exists()
    assert ParticipantTeam.objects.filter(name="Own").exists()


def test_the_pages_refuse_joins_after_the_entry_deadline_and_merges_after_theirs(
    challenge, users, django_user_model
):
    entered = team(django_user_model, challenge, "Entered", user=users["charlie"])
    other = team(django_user_model, challenge, "Other")
    Challenge.objects.filter(pk=challenge.pk).update(entry_deadline=PAST, team_merger_deadline=PAST)
    bob = Client()
    bob.force_login(users["bob"])
    joined = bob.post(
        "/teams/", {"action": "join", "join-invitation_code": entered.invitation_code}
    ).content.decode()
    assert "whose entry deadline passed on 2024-05-06 07:08 UTC" in joined
    assert not ParticipantTeamMember.objects.filter(team=entered, user=users["bob"]).exists()
    charlie = Client()
    charlie.force_login(users["charlie"])
    merges = charlie.get(f"/challenges/{challenge.pk}/merges/").content.decode()
    assert "data-merger-closed" in merges and "Send merge request" not in merges
    refused = charlie.post(
        f"/challenges/{challenge.pk}/merges/request/", {"team": other.pk}, follow=True
    ).content.decode()
    assert "merger deadline of &#x27;Leaderboard probe&#x27; passed on 2024-05-06 07:08 UTC" in (
        refused
    )

"""Kaggle's team merges (challenges.services.merges) through the v1 API, on PostgreSQL:
accepted, refused for each of the three reasons with the numbers, quotas afterwards."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from challenges.models import (
    AuditEvent,
    Challenge,
    ChallengeParticipation,
    ParticipantTeamMember,
    Submission,
    TeamMerge,
)
from tests.challenges.leaderboard_helpers import (
    board_url,
    finish,
    load,
    scored,
    submit_row,
    team,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(users, django_user_model):
    make = django_user_model.objects.create_user
    return {**users, **{n: make(n, f"{n}@example.org", f"pw-{n}-123") for n in ("dave", "erin")}}


@pytest.fixture
def as_user(people):
    """as_user("dave"): an API client with dave's token."""

    def client(name: str) -> APIClient:
        c = APIClient()
        token, _ = Token.objects.get_or_create(user=people[name])
        c.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return c

    return client


def challenge_with(users, host_teams, phase=None, **options) -> Challenge:
    return load(users, host_teams["alice"], phase=phase or {}, **options)


def teams_of_two(challenge, people, django_user_model):
    """A: charlie (leader) and erin; B: dave (leader)."""
    a = team(django_user_model, challenge, "A", user=people["charlie"])
    ParticipantTeamMember.objects.create(team=a, user=people["erin"])
    b = team(django_user_model, challenge, "B", user=people["dave"])
    return a, b


def ask(as_user, challenge, who, receiving):
    return as_user(who).post(
        f"/api/v1/challenges/{challenge.pk}/merges/", {"team": receiving.pk}, format="json"
    )


def decide(as_user, merge_id, who, decision="accept"):
    return as_user(who).post(f"/api/v1/merges/{merge_id}/{decision}/")


def test_an_accepted_merge_keeps_one_name_all_members_all_submissions_and_one_row(
    people, host_teams, as_user, django_user_model
):
    challenge = challenge_with(people, host_teams, max_team_members=3)
    a, b = teams_of_two(challenge, people, django_user_model)
    a1 = scored(challenge, a, {"Acc": 0.9})
    scored(challenge, b, {"Acc": 0.5})
    asked = ask(as_user, challenge, "charlie", b)
    assert asked.status_code == 201, asked.content
    merge_id = asked.json()["id"]
    assert asked.json()["status"] == "pending"
    # Only the receiving team's leader accepts; the requester cannot accept its own.
    assert decide(as_user, merge_id, "charlie").status_code == 403
    assert decide(as_user, merge_id, "bob").status_code == 404  # no relation: not found
    accepted = decide(as_user, merge_id, "dave")
    assert accepted.status_code == 200, accepted.content
    body = accepted.json()
    assert body["status"] == "accepted"
    assert (body["members_moved"], body["submissions_moved"]) == (2, 1)
    assert set(b.members.values_list("username", flat=True)) == {"charlie", "dave", "erin"}
    assert Submission.objects.filter(team=b).count() == 2
    assert Submission.objects.get(pk=a1.pk).merged_from_team_id == a.pk
    assert not ChallengeParticipation.objects.filter(challenge=challenge, team=a).exists()
    # The leaderboard shows one row: the merged team's best (A's 0.9), under B's name.
    rows = as_user("erin").get(board_url(challenge)).json()["rows"]
    assert [(r["team"], r["scores"][0]) for r in rows] == [("B", 0.9)]
    event = AuditEvent.objects.get(action=AuditEvent.Action.TEAM_MERGE)
    assert event.target == "A -> B" and event.actor_name == "dave"
    assert event.details["submissions_moved"] == 1 and event.challenge_id == challenge.pk
    # The host sees where the submission came from.
    listed = as_user("alice").get(f"/api/v1/challenges/{challenge.pk}/phases/dev/submissions/")
    by_id = {s["id"]: s for s in listed.json()}
    assert by_id[a1.pk]["merged_from_team"] == "A" and by_id[a1.pk]["team"] == "B"


def test_a_merge_over_the_team_size_limit_is_refused_with_the_numbers(
    people, host_teams, as_user, django_user_model
):
    challenge = challenge_with(people, host_teams, max_team_members=2)
    _a, b = teams_of_two(challenge, people, django_user_model)
    refused = ask(as_user, challenge, "charlie", b)
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "at most 2 members per team" in detail and "together have 3" in detail
    assert not TeamMerge.objects.exists()


def test_a_merge_over_one_teams_submission_allowance_is_refused_with_the_numbers(
    people, host_teams, as_user, django_user_model
):
    today = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    challenge = challenge_with(
        people,
        host_teams,
        phase={
            "max_submissions_per_day": 2,
            "start_date": (today - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    a, b = teams_of_two(challenge, people, django_user_model)
    # Two days (yesterday and today) at 2 a day: one team could have made 4.
    for _i in range(3):
        scored(challenge, a, {"Acc": 0.1})
    scored(challenge, b, {"Acc": 0.2})
    asked = ask(as_user, challenge, "charlie", b)
    assert asked.status_code == 201, asked.content  # 4 <= 4
    # One more before the answer: the rule is checked again when accepted.
    scored(challenge, b, {"Acc": 0.3})
    refused = decide(as_user, asked.json()["id"], "dave")
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "made 5 submissions to phase 'dev'" in detail
    assert "at most 4 by today (2 a day for 2 days" in detail
    assert TeamMerge.objects.get().status == "pending"
    # Failed submissions use no quota, so they do not count against a merge either.
    Submission.objects.filter(team=b).update(status=Submission.Status.FAILED)
    assert decide(as_user, asked.json()["id"], "dave").status_code == 200


def test_a_merge_after_the_merger_deadline_is_refused_with_the_date(
    people, host_teams, as_user, django_user_model
):
    challenge = challenge_with(people, host_teams)
    _a, b = teams_of_two(challenge, people, django_user_model)
    asked = ask(as_user, challenge, "charlie", b)
    assert asked.status_code == 201
    Challenge.objects.filter(pk=challenge.pk).update(
        team_merger_deadline=dt.datetime(2024, 5, 6, 7, 8, tzinfo=dt.UTC)
    )
    refused = decide(as_user, asked.json()["id"], "dave")
    assert refused.status_code == 400
    assert (
        "merger deadline of 'Leaderboard probe' passed on 2024-05-06 07:08 UTC"
        in (refused.json()["detail"])
    )
    again = ask(as_user, challenge, "charlie", b)
    assert again.status_code == 400 and "passed on 2024-05-06 07:08" in again.json()["detail"]


def test_quotas_count_the_merged_teams_submissions_from_then_on(
    people, host_teams, as_user, django_user_model
):
    challenge = challenge_with(people, host_teams, phase={"max_submissions_per_day": 5})
    a, b = teams_of_two(challenge, people, django_user_model)
    for owner, count in ((a, 2), (b, 1)):
        for _i in range(count):
            scored(challenge, owner, {"Acc": 0.5})
    Submission.objects.update(submitted_at=timezone.now())  # all today
    quota_url = f"/api/v1/challenges/{challenge.pk}/phases/dev/quota/"

    def used_today(who):
        quotas = as_user(who).get(quota_url).json()["quotas"]
        return next(q for q in quotas if q["quota"] == "per_day")

    assert used_today("dave")["used"] == 1
    merge = ask(as_user, challenge, "charlie", b).json()["id"]
    assert decide(as_user, merge, "dave").status_code == 200
    # Every member, old and new, reads the merged team's quota: 3 of 5 used today.
    for who in ("dave", "charlie", "erin"):
        assert (used_today(who)["used"], used_today(who)["remaining"]) == (3, 2)


def test_declining_and_withdrawing_close_a_request_and_only_the_right_people_may(
    people, host_teams, as_user, django_user_model
):
    challenge = challenge_with(people, host_teams)
    _a, b = teams_of_two(challenge, people, django_user_model)
    first = ask(as_user, challenge, "charlie", b).json()["id"]
    assert ask(as_user, challenge, "erin", b).status_code == 403  # not A's leader
    assert decide(as_user, first, "dave", "withdraw").status_code == 403
    assert decide(as_user, first, "erin", "withdraw").json()["status"] == "withdrawn"
    assert decide(as_user, first, "dave").status_code == 400  # no longer open
    second = ask(as_user, challenge, "charlie", b).json()["id"]
    assert decide(as_user, second, "charlie", "decline").status_code == 403
    assert decide(as_user, second, "dave", "decline").json()["status"] == "declined"
    listed = as_user("dave").get(f"/api/v1/challenges/{challenge.pk}/merges/").json()
    assert [m["status"] for m in listed] == ["declined", "withdrawn"]
    assert as_user("bob").get(f"/api/v1/challenges/{challenge.pk}/merges/").json() == []


def test_a_merge_waits_for_the_requesting_teams_running_submissions(
    people, host_teams, as_user, django_user_model
):
    challenge = challenge_with(people, host_teams)
    a, b = teams_of_two(challenge, people, django_user_model)
    waiting = submit_row(challenge, a)  # queued
    merge = ask(as_user, challenge, "charlie", b).json()["id"]
    refused = decide(as_user, merge, "dave")
    assert refused.status_code == 400
    assert "'A' has 1 submission waiting or being evaluated" in refused.json()["detail"]
    finish(waiting, {"main": {"Acc": 0.4}})
    assert decide(as_user, merge, "dave").status_code == 200
    assert Submission.objects.get(pk=waiting.pk).team_id == b.pk

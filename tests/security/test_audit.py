"""Audit log: approve, reject, re-score, re-run, visibility changes, bans, new bundle
versions and token revocations are recorded with who, when and what; the admin shows
them read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from challenges.models import AuditEvent, ChallengeParticipation
from challenges.services.challenges import challenge_reject
from challenges.services.hosting import participation_set_banned

pytestmark = pytest.mark.django_db

A = AuditEvent.Action


def _actions() -> list[str]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))


def test_it_records_approval_and_the_first_script_version(world, users):
    approve = AuditEvent.objects.get(action=A.CHALLENGE_APPROVE, challenge=world.challenge)
    assert approve.actor == users["admin"] and approve.actor_name == "admin" and approve.at
    version = AuditEvent.objects.filter(action=A.SCRIPT_VERSION, challenge=world.challenge).get()
    assert version.actor == users["alice"] and version.details["version"] == 1


def test_it_records_rejection_bans_visibility_reruns_and_rescores(world, users, api):
    challenge_reject(challenge=world.pending, reviewer=users["admin"], note="no license")
    participation = ChallengeParticipation.objects.get(team=world.dave_team)
    participation_set_banned(
        participation=participation, banned=True, reason="x", by=users["admin"]
    )
    base = f"/api/v1/challenges/{world.challenge.pk}/phases/test"
    assert (
        api("alice").patch(f"{base}/splits/public/", {"visibility": 1}, format="json").status_code
        == 200
    )
    assert (
        api("alice").post(f"/api/v1/submissions/{world.charlie_sub.pk}/rerun/").status_code == 200
    )
    assert api("alice").post(f"{base}/rescore/").status_code == 200
    recorded = _actions()
    for action in (
        A.CHALLENGE_REJECT,
        A.TEAM_BAN,
        A.SPLIT_VISIBILITY,
        A.SUBMISSION_RERUN,
        A.PHASE_RESCORE,
    ):
        assert action in recorded, action
    visibility = AuditEvent.objects.get(action=A.SPLIT_VISIBILITY)
    assert visibility.actor == users["alice"] and visibility.details == {"before": 3, "after": 1}
    assert AuditEvent.objects.get(action=A.CHALLENGE_REJECT).details["note"] == "no license"


def test_it_shows_the_log_read_only_in_the_admin(world, users):
    client = Client()
    client.force_login(users["admin"])
    event = AuditEvent.objects.first()
    assert client.get("/admin/challenges/auditevent/").status_code == 200
    assert client.get(f"/admin/challenges/auditevent/{event.pk}/change/").status_code == 200
    assert client.get("/admin/challenges/auditevent/add/").status_code == 403
    assert (
        client.post(f"/admin/challenges/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_it_records_deactivating_a_user_in_the_admin(world, users):
    client = Client()
    client.force_login(users["admin"])
    erin = users["erin"]
    page = client.get(f"/admin/auth/user/{erin.pk}/change/")
    form = page.context["adminform"].form
    data = {
        k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list | tuple)
    }
    data.update(
        {
            "username": erin.username,
            "is_active": "",
            "date_joined_0": erin.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": erin.date_joined.strftime("%H:%M:%S"),
        }
    )
    data.pop("password", None)
    data.pop("last_login", None)
    response = client.post(f"/admin/auth/user/{erin.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    erin.refresh_from_db()
    assert not erin.is_active
    event = AuditEvent.objects.get(action=A.USER_BAN)
    assert event.actor == users["admin"] and "erin" in event.target

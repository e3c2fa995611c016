"""Admins approve and reject challenges in bulk from the Django admin."""

from __future__ import annotations

import pytest
from django.test import Client

from challenges.models import Challenge
from challenges.services.bundles import challenge_load_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(users, host_teams, starter_zips):
    return [
        challenge_load_bundle(
            source=path, user=users["alice"], host_team=host_teams["alice"]
        ).challenge
        for path in starter_zips.values()
    ]


def admin_client(users) -> Client:
    client = Client()
    client.force_login(users["admin"])
    return client


def test_bulk_approve_and_reject(users, loaded):
    client = admin_client(users)
    changelist = client.get("/admin/challenges/challenge/")
    assert changelist.status_code == 200 and b"Pending review" in changelist.content
    ids = [str(c.pk) for c in loaded]
    response = client.post(
        "/admin/challenges/challenge/", {"action": "approve", "_selected_action": ids}
    )
    assert response.status_code == 302
    assert all(c.approved_by_admin and c.review == "approved" for c in Challenge.objects.all())
    client.post("/admin/challenges/challenge/", {"action": "reject", "_selected_action": ids[:1]})
    rejected = Challenge.objects.get(pk=ids[0])
    assert not rejected.approved_by_admin and rejected.review == "rejected" and rejected.reviewed_at


def test_approving_counts_only_the_challenges_newly_approved(users, loaded):
    client = admin_client(users)
    ids = [str(c.pk) for c in loaded]
    client.post("/admin/challenges/challenge/", {"action": "approve", "_selected_action": ids[:1]})
    response = client.post(
        "/admin/challenges/challenge/",
        {"action": "approve", "_selected_action": ids},
        follow=True,
    )
    text = response.content.decode()
    newly = len(ids) - 1
    assert f"Approved {newly} challenge" in text and "1 was approved already." in text


def test_the_change_page_shows_phases_splits_and_scripts_inline(users, loaded):
    page = admin_client(users).get(f"/admin/challenges/challenge/{loaded[0].pk}/change/")
    assert page.status_code == 200
    for fragment in (b"Challenge phases", b"Dataset splits", b"Evaluation scripts"):
        assert fragment in page.content


def test_non_staff_cannot_reach_the_admin(users, loaded):
    client = Client()
    client.force_login(users["alice"])
    assert client.get("/admin/challenges/challenge/").status_code == 302

"""Issue 22: the API returned a challenge's description HTML as stored, while the pages
sanitise it. Every stored HTML field now leaves the API as the pages show it."""

from __future__ import annotations

import pytest

from challenges.models import Challenge, ChallengePhase

pytestmark = pytest.mark.django_db

EVIL = (
    '<p onclick="steal()">Hi <script>alert(1)</script>'
    '<a href="javascript:alert(2)">x</a><img src=x onerror="alert(3)"></p>'
)
FIELDS = ["description", "evaluation_details", "terms_and_conditions", "submission_guidelines"]


def _assert_clean(html: str):
    for bad in ("<script", "onclick", "onerror", "javascript:", "alert("):
        assert bad not in html, html
    assert "Hi" in html


def test_the_api_returns_stored_html_sanitised_like_the_pages(world, api):
    Challenge.objects.filter(pk=world.challenge.pk).update(
        **dict.fromkeys([*FIELDS, "leaderboard_description"], EVIL)
    )
    ChallengePhase.objects.filter(challenge=world.challenge).update(description=EVIL)
    for who in (None, "charlie", "alice"):
        body = api(who).get(f"/api/v1/challenges/{world.challenge.pk}/").json()
        for field in FIELDS:
            _assert_clean(body[field])
        for phase in body["phases"]:
            _assert_clean(phase["description"])
    evalai = api("charlie")
    body = evalai.get(f"/api/challenges/challenge/{world.challenge.pk}/").json()
    for field in [*FIELDS, "leaderboard_description"]:
        _assert_clean(body[field])
    phases = evalai.get(f"/api/challenges/challenge/{world.challenge.pk}/challenge_phase").json()
    for phase in phases["results"]:
        _assert_clean(phase["description"])
    page = api("charlie").get(f"/challenges/{world.challenge.pk}/").content.decode()
    assert "<script>alert(1)" not in page

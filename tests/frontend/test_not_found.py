"""With DEBUG on (the demo), a 404 is the platform's own page, never Django's technical
one that lists the URL patterns."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/challenges/{id}/phases/test/leaderboard/private/",  # a host-only leaderboard
        "/challenges/{id}/phases/nope/leaderboard/public/",
        "/no/such/page/",
    ],
)
def test_a_participant_gets_the_platforms_own_404_with_debug_on(world, client_as, settings, url):
    settings.DEBUG = True
    response = client_as("participant").get(url.format(id=world.challenge.pk))
    assert response.status_code == 404
    page = response.content.decode()
    assert "Nothing here" in page
    assert "URLconf" not in page and "urlpatterns" not in page and "Raised by" not in page


def test_the_api_keeps_its_json_404_with_debug_on(world, api, settings):
    settings.DEBUG = True
    response = api("charlie").get(f"/api/v1/challenges/{world.challenge.pk}/phases/nope/quota/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")

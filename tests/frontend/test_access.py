"""Every page, every role: who gets the page, who is sent to log in, who gets 403 or 404.

404 rather than 403 wherever telling would leak that the thing exists (a pending
challenge, another team's submission, a host-only split).
"""

from __future__ import annotations

import pytest

from tests.conftest import ROLES

pytestmark = pytest.mark.django_db

OK, LOGIN, AWAY = 200, "login", "redirect"


def expect(**by_role):
    """Expected answers per role; `rest` fills the roles not named."""
    rest = by_role.pop("rest", None)
    return {role: by_role.get(role, rest) for role in ROLES}


PAGES = {
    "home": ("GET", lambda w: "/", expect(rest=OK)),
    "challenge": ("GET", lambda w: f"/challenges/{w.challenge.pk}/", expect(rest=OK)),
    "pending challenge": (
        "GET",
        lambda w: f"/challenges/{w.pending.pk}/",
        expect(host=OK, admin=OK, rest=404),
    ),
    "teams": ("GET", lambda w: "/teams/", expect(anonymous=LOGIN, rest=OK)),
    "my submissions": (
        "GET",
        lambda w: f"/challenges/{w.challenge.pk}/submissions/",
        expect(anonymous=LOGIN, participant=OK, other_team=OK, rest=AWAY),
    ),
    "my submissions, pending": (
        "GET",
        lambda w: f"/challenges/{w.pending.pk}/submissions/",
        expect(anonymous=LOGIN, host=AWAY, admin=AWAY, rest=404),
    ),
    "submit": (
        "GET",
        lambda w: f"/challenges/{w.challenge.pk}/phases/dev/submit/",
        expect(anonymous=LOGIN, participant=OK, other_team=OK, host=OK, admin=OK, rest=AWAY),
    ),
    "submit, unknown phase": (
        "GET",
        lambda w: f"/challenges/{w.challenge.pk}/phases/nope/submit/",
        expect(anonymous=LOGIN, rest=404),
    ),
    "submission": (
        "GET",
        lambda w: f"/submissions/{w.charlie_sub.pk}/",
        expect(anonymous=LOGIN, participant=OK, host=OK, admin=OK, rest=404),
    ),
    "public leaderboard": (
        "GET",
        lambda w: f"/challenges/{w.challenge.pk}/phases/test/leaderboard/public/",
        expect(rest=OK),
    ),
    "host-only leaderboard": (
        "GET",
        lambda w: f"/challenges/{w.challenge.pk}/phases/test/leaderboard/private/",
        expect(host=OK, admin=OK, rest=404),
    ),
    "host dashboard": ("GET", lambda w: "/host/", expect(anonymous=LOGIN, rest=OK)),
    "host upload": (
        "GET",
        lambda w: "/host/upload/",
        expect(anonymous=LOGIN, host=OK, other_host=OK, rest=AWAY),
    ),
    "host challenge": (
        "GET",
        lambda w: f"/host/challenges/{w.challenge.pk}/",
        expect(anonymous=LOGIN, host=OK, admin=OK, rest=403),
    ),
    "host challenge, pending": (
        "GET",
        lambda w: f"/host/challenges/{w.pending.pk}/",
        expect(anonymous=LOGIN, host=OK, admin=OK, rest=404),
    ),
    "host submissions": (
        "GET",
        lambda w: f"/host/challenges/{w.challenge.pk}/submissions/",
        expect(anonymous=LOGIN, host=OK, admin=OK, rest=403),
    ),
    "host submissions csv": (
        "GET",
        lambda w: f"/host/challenges/{w.challenge.pk}/submissions/?format=csv",
        expect(anonymous=LOGIN, host=OK, admin=OK, rest=403),
    ),
    "re-run": (
        "POST",
        lambda w: f"/submissions/{w.charlie_sub.pk}/rerun/",
        expect(anonymous=LOGIN, participant=403, host=AWAY, admin=AWAY, rest=404),
    ),
    "cancel": (
        "POST",
        lambda w: f"/submissions/{w.charlie_running.pk}/cancel/",
        expect(anonymous=LOGIN, participant=AWAY, host=AWAY, admin=AWAY, rest=404),
    ),
    "re-score": (
        "POST",
        lambda w: f"/host/challenges/{w.challenge.pk}/phases/test/rescore/",
        expect(anonymous=LOGIN, host=AWAY, admin=AWAY, rest=403),
    ),
    "participate": (
        "POST",
        lambda w: f"/challenges/{w.challenge.pk}/participate/",
        expect(anonymous=LOGIN, rest=AWAY),
    ),
    "participate, pending": (
        "POST",
        lambda w: f"/challenges/{w.pending.pk}/participate/",
        expect(anonymous=LOGIN, host=AWAY, admin=AWAY, rest=404),
    ),
    "split visibility": (
        "POST",
        lambda w: f"/host/challenges/{w.challenge.pk}/phases/test/leaderboard/private/visibility/",
        expect(anonymous=LOGIN, host=AWAY, admin=AWAY, rest=403),
    ),
    "show on leaderboard": (
        "POST",
        lambda w: f"/submissions/{w.charlie_sub.pk}/public/",
        expect(anonymous=LOGIN, participant=AWAY, host=403, admin=403, rest=404),
    ),
    "final pick": (
        "POST",
        lambda w: f"/submissions/{w.charlie_sub.pk}/final/",
        expect(anonymous=LOGIN, participant=AWAY, host=403, admin=403, rest=404),
    ),
    "baseline": (
        "POST",
        lambda w: f"/submissions/{w.charlie_sub.pk}/baseline/",
        expect(anonymous=LOGIN, participant=403, host=AWAY, admin=AWAY, rest=404),
    ),
    "signup": ("GET", lambda w: "/accounts/signup/", expect(anonymous=OK, rest=AWAY)),
    "password reset": ("GET", lambda w: "/accounts/password-reset/", expect(rest=OK)),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_answers_each_role_as_expected(world, client_as, name, role):
    method, url, expected = PAGES[name]
    client = client_as(role)
    response = (client.get if method == "GET" else client.post)(url(world))
    want = expected[role]
    if want == LOGIN:
        assert response.status_code == 302, response.status_code
        assert response["Location"].startswith("/accounts/login/")
    elif want == AWAY:
        assert response.status_code == 302, response.status_code
        assert not response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code == want


def test_a_403_page_says_why(world, client_as):
    page = client_as("other_host").get(f"/host/challenges/{world.challenge.pk}/")
    assert page.status_code == 403
    assert b"Only hosts of this challenge may do this." in page.content


def test_a_404_page_helps_find_the_way(world, client_as):
    page = client_as("anonymous").get("/no/such/page/")
    assert page.status_code == 404
    assert b"See all challenges" in page.content and b"log in" in page.content


def test_the_500_page_renders_without_a_request_context():
    from django.template.loader import get_template

    html = get_template("500.html").render()
    assert "Something went wrong on our side" in html


def test_other_teams_logs_and_host_only_scores_stay_hidden(world, client_as):
    charlie = client_as("participant")
    # The team reads its own logs where the host shows them (issue 11: not by default).
    world.charlie_sub.phase.show_logs_to_participants = True
    world.charlie_sub.phase.save()
    mine = charlie.get(f"/submissions/{world.charlie_sub.pk}/").content.decode()
    assert "charlie-secret-stdout" in mine
    assert "0.7777" not in mine, "host-only split score shown to the participant"
    listing = charlie.get(f"/challenges/{world.challenge.pk}/submissions/").content.decode()
    assert "0.81" in listing and "0.7777" not in listing and "dave" not in listing.lower()
    host = client_as("host").get(f"/submissions/{world.charlie_sub.pk}/").content.decode()
    assert "charlie-secret-stdout" in host and "0.7777" in host
    assert client_as("other_team").get(f"/submissions/{world.charlie_sub.pk}/").status_code == 404


def test_participants_are_not_told_the_host_only_split_exists(world, client_as):
    for role in ("anonymous", "participant"):
        page = client_as(role).get(f"/challenges/{world.challenge.pk}/").content.decode()
        assert "leaderboard/private/" not in page
    host = client_as("host").get(f"/challenges/{world.challenge.pk}/").content.decode()
    assert "leaderboard/private/" in host


def test_host_submission_list_shows_every_team_with_logs_links(world, client_as):
    page = client_as("host").get(f"/host/challenges/{world.challenge.pk}/submissions/")
    text = page.content.decode()
    assert "Charlie Team" in text and "Dave Team" in text
    assert f"/submissions/{world.charlie_sub.pk}/" in text

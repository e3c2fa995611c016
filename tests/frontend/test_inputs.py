"""Nothing a browser can send makes a page answer 500.

The test client re-raises exceptions from views, so a crash fails the test outright.
"""

from __future__ import annotations

import io

import pytest

pytestmark = pytest.mark.django_db

HUGE_ID = "9" * 30
WEIRD = [
    "99999999999999999",
    "",
    " ",
    "0",
    "-1",
    "abc",
    "1e9",
    HUGE_ID,
    "<script>x</script>",
    "' OR 1=1 --",
    "\u202e\u0000",
]


def upload(name: str, content: bytes) -> io.BytesIO:
    stream = io.BytesIO(content)
    stream.name = name
    return stream


def urls(w):
    c = w.challenge.pk
    return [
        "/",
        f"/challenges/{c}/",
        f"/challenges/{HUGE_ID}/",
        f"/challenges/{c}/submissions/",
        f"/challenges/{c}/phases/dev/submit/",
        f"/challenges/{c}/phases/%00/submit/",
        f"/challenges/{c}/phases/test/leaderboard/public/",
        f"/challenges/{c}/phases/test/leaderboard/%3Cx%3E/",
        f"/challenges/{c}/phases/test/leaderboard/private/",
        f"/submissions/{HUGE_ID}/",
        f"/submissions/{w.charlie_sub.pk}/",
        "/teams/",
        "/host/",
        "/host/upload/",
        f"/host/challenges/{c}/",
        f"/host/challenges/{c}/submissions/",
        f"/host/challenges/{HUGE_ID}/submissions/",
        "/accounts/signup/",
        "/accounts/login/",
        "/accounts/password-reset/",
        "/accounts/reset/xx/yy/",
    ]


@pytest.mark.parametrize("role", ["anonymous", "participant", "host"])
def test_weird_query_strings_never_crash_a_page(world, client_as, role):
    client = client_as(role)
    for url in urls(world):
        for value in WEIRD:
            params = {
                "order": value,
                "phase": value,
                "status": value,
                "team": value,
                "next": value,
                "scope": value,
                "page": value,
            }
            answer = client.get(url, params)
            assert answer.status_code in (200, 302, 403, 404), (url, value, answer.status_code)
        answer = client.get(url, {"format": "csv", "phase": "nope"})
        assert answer.status_code in (200, 302, 403, 404)


@pytest.mark.parametrize("role", ["participant", "host", "outsider"])
def test_weird_form_posts_never_crash_a_page(world, client_as, role):
    client = client_as(role)
    c = world.challenge.pk
    bodies = [{}] + [
        {
            "team": v,
            "accept_terms": v,
            "action": v,
            "name": v * 50,
            "create-name": v * 50,
            "value": v,
            "visibility": v,
        }
        for v in WEIRD
    ]
    files = [
        upload("x.csv", b""),
        upload("x.csv", b"\x00\x01binary"),
        upload("../../etc/passwd.csv", b"id,label\n"),
        upload("x.zip", b"not a zip"),
        upload("x" * 300 + ".csv", b"id\n1\n"),
    ]
    posts = [
        f"/challenges/{c}/participate/",
        "/teams/",
        "/host/",
        f"/host/challenges/{c}/phases/nope/rescore/",
        f"/submissions/{HUGE_ID}/rerun/",
        f"/submissions/{HUGE_ID}/cancel/",
        f"/submissions/{world.charlie_sub.pk}/final/",
        f"/submissions/{world.charlie_sub.pk}/public/",
        f"/submissions/{world.charlie_sub.pk}/baseline/",
        f"/host/challenges/{c}/phases/test/leaderboard/private/visibility/",
    ]
    for url in posts:
        for body in bodies:
            answer = client.post(url, body)
            assert answer.status_code in (200, 302, 400, 403, 404, 405), (url, body)
    for url in (f"/challenges/{c}/phases/dev/submit/", "/host/upload/", f"/host/challenges/{c}/"):
        for body in bodies[:3]:
            answer = client.post(url, body)
            assert answer.status_code in (200, 302, 400, 403, 404), (url, body)
        for f in files:
            f.seek(0)
            data = {
                "file": f,
                "host_team": "abc",
                "meta_0": "x" * 20000,
                "meta_1": ["a", "b"],
                "project_url": "javascript:alert(1)",
            }
            answer = client.post(url, data, HTTP_ACCEPT="application/json")
            assert answer.status_code in (200, 302, 400, 403, 404), (url, f.name)


def test_a_long_team_name_and_a_forged_next_are_refused_politely(world, client_as):
    client = client_as("outsider")
    page = client.post("/teams/", {"action": "create", "create-name": "x" * 500})
    assert page.status_code == 200 and b"at most 100 characters" in page.content
    page = client.post(
        "/teams/", {"action": "create", "create-name": "Fine", "next": "https://evil.example/"}
    )
    assert page["Location"] == "/teams/"


def test_signup_errors_are_shown_on_the_form(world):
    from django.test import Client

    page = Client().post(
        "/accounts/signup/",
        {"username": "charlie", "email": "charlie@example.org", "password1": "a", "password2": "b"},
    )
    assert page.status_code == 200
    text = page.content.decode()
    # The username is taken (usernames are public on leaderboards); the email says nothing.
    assert "already exists" in text and "An account with this email" not in text

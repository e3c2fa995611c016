"""Finding 5: forty wrong passwords on /api/v1/auth/token/ and on the login page, then the
right one, were all answered normally. Now each sign-in style endpoint and submitting are
throttled, answer 429 with Retry-After, and the limits are settings (small ones here)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.workers.pipeline_helpers import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, **rates}

    return set_rates


def _throttled(response):
    assert response.status_code == 429, (response.status_code, response.content[:300])
    assert int(response["Retry-After"]) >= 1
    return response


def test_it_throttles_the_token_endpoint_per_username(users, api, rates):
    rates(token_user="3/minute", token_ip="")
    client = api(None)
    for _ in range(3):
        bad = client.post("/api/v1/auth/token/", {"username": "charlie", "password": "wrong"})
        assert bad.status_code == 400
    _throttled(
        client.post("/api/v1/auth/token/", {"username": "charlie", "password": "pw-charlie-123"})
    )
    # Another account from the same address is not held up by charlie's limit.
    ok = client.post("/api/v1/auth/token/", {"username": "bob", "password": "pw-bob-123"})
    assert ok.status_code == 200 and ok.json()["token"]


def test_it_throttles_the_token_endpoint_per_address(users, api, rates):
    rates(token_ip="3/minute", token_user="")
    client = api(None)
    for name in ("alice", "bob", "charlie"):
        client.post("/api/v1/auth/token/", {"username": name, "password": "wrong"})
    body = _throttled(
        client.post("/api/v1/auth/token/", {"username": "admin", "password": "pw-admin-123"})
    ).json()
    assert "throttled" in body["detail"].lower() or "request" in body["detail"].lower()


def test_it_throttles_the_login_page_per_username_and_per_address(users, rates):
    rates(login_user="3/minute", login_ip="5/minute")
    client = Client()
    for _ in range(3):
        page = client.post("/accounts/login/", {"username": "charlie", "password": "wrong"})
        assert page.status_code == 200
    page = _throttled(
        client.post("/accounts/login/", {"username": "charlie", "password": "pw-charlie-123"})
    )
    assert b"Too many attempts" in page.content and "_auth_user_id" not in client.session
    client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
    # The sixth attempt from this address, whatever the account.
    _throttled(client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-123"}))


def test_it_throttles_sign_up_and_password_reset(users, rates):
    rates(
        signup_ip="2/minute", signup_email="", password_reset_user="2/minute", password_reset_ip=""
    )
    client = Client()
    for i in range(2):
        client.post("/accounts/signup/", {"username": f"new{i}", "email": "x@example.org"})
    _throttled(client.post("/accounts/signup/", {"username": "new9", "email": "y@example.org"}))
    rates(signup_ip="", signup_email="1/minute")
    client.post("/accounts/signup/", {"username": "new10", "email": "z@example.org"})
    _throttled(client.post("/accounts/signup/", {"username": "new11", "email": "z@example.org"}))
    assert (
        client.post("/accounts/signup/", {"username": "n12", "email": "w@example.org"}).status_code
        == 200
    )
    for _ in range(2):
        sent = client.post("/accounts/password-reset/", {"email": "charlie@example.org"})
        assert sent.status_code == 302
    _throttled(client.post("/accounts/password-reset/", {"email": "Charlie@example.org"}))
    # Reading the pages is never throttled.
    assert client.get("/accounts/signup/").status_code == 200


def test_it_throttles_submitting_per_user(users, host_teams, api, rates):
    from tests.workers.pipeline_helpers import (
        GOOD_EVALUATE,
        load_approved,
        participate,
        script_bundle,
    )

    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    rates(submit_user="2/minute")
    client = api("charlie")
    for _ in range(2):
        assert submit(client, challenge, "probe", "41").status_code == 201
    _throttled(submit(client, challenge, "probe", "41"))
    # Listing one's submissions is not an upload.
    url = f"/api/v1/challenges/{challenge.pk}/phases/probe/submissions/"
    assert client.get(url).status_code == 200


def test_it_throttles_the_admin_login_page_too(users, rates):
    rates(login_user="2/minute", login_ip="")
    client = Client()
    for _ in range(2):
        client.post("/admin/login/", {"username": "admin", "password": "wrong"})
    _throttled(client.post("/admin/login/", {"username": "admin", "password": "pw-admin-123"}))


def test_it_ignores_a_forged_x_forwarded_for(users, api, rates):
    rates(token_ip="2/minute", token_user="")
    client = api(None)
    for i in range(2):
        client.post(
            "/api/v1/auth/token/",
            {"username": "charlie", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}",
        )
    _throttled(
        client.post(
            "/api/v1/auth/token/",
            {"username": "charlie", "password": "wrong"},
            HTTP_X_FORWARDED_FOR="10.0.0.99",
        )
    )

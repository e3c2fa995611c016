"""Finding 6: API tokens never expired and could not be revoked. Now users list, revoke
and rotate them (API and page), operators set TOKEN_TTL_DAYS, and logging out of the
browser says what happens to the token (and can revoke it)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from challenges.models import AuditEvent

pytestmark = pytest.mark.django_db


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _obtain(name: str, password: str) -> str:
    response = APIClient().post("/api/v1/auth/token/", {"username": name, "password": password})
    assert response.status_code == 200, response.content
    return response.json()["token"]


def test_it_lists_tokens_without_their_keys(users):
    key = _obtain("charlie", "pw-charlie-123")
    listed = _token_client(key).get("/api/v1/auth/tokens/").json()
    assert [t["id"] for t in listed] == [key[:8]] and key not in str(listed)


def test_it_revokes_a_token_over_the_api(users):
    key = _obtain("charlie", "pw-charlie-123")
    client = _token_client(key)
    other = _obtain("bob", "pw-bob-123")
    # Nobody revokes someone else's token.
    assert client.delete(f"/api/v1/auth/tokens/{other[:8]}/").status_code == 404
    assert client.delete(f"/api/v1/auth/tokens/{key[:8]}/").status_code == 204
    assert client.get("/api/v1/auth/tokens/").status_code == 401
    assert _token_client(other).get("/api/v1/auth/tokens/").status_code == 200
    event = AuditEvent.objects.get(action=AuditEvent.Action.TOKEN_REVOKE)
    assert event.actor == users["charlie"] and event.target == key[:8]


def test_it_rotates_a_token(users):
    key = _obtain("charlie", "pw-charlie-123")
    new = _token_client(key).post("/api/v1/auth/tokens/rotate/").json()["token"]
    assert new != key
    assert _token_client(key).get("/api/v1/auth/tokens/").status_code == 401
    assert _token_client(new).get("/api/v1/auth/tokens/").status_code == 200
    assert AuditEvent.objects.filter(action=AuditEvent.Action.TOKEN_ROTATE).count() == 1


def test_it_refuses_tokens_older_than_the_ttl_and_hands_out_a_new_one(users, settings):
    settings.TOKEN_TTL_DAYS = 30
    key = _obtain("charlie", "pw-charlie-123")
    body = _token_client(key).get("/api/v1/auth/tokens/").json()
    assert body[0]["expires_at"]
    Token.objects.filter(key=key).update(created=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    refused = _token_client(key).get("/api/v1/auth/tokens/")
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]
    fresh = _obtain("charlie", "pw-charlie-123")
    assert fresh != key and _token_client(fresh).get("/api/v1/auth/tokens/").status_code == 200


def test_it_manages_tokens_on_a_page(users):
    client = Client()
    client.force_login(users["charlie"])
    assert b"No token yet" in client.get("/accounts/tokens/").content
    page = client.post("/accounts/tokens/", {"action": "rotate"})
    key = Token.objects.get(user=users["charlie"]).key
    assert key in page.content.decode()  # shown once, in the answer (never in a cookie)
    assert all(key not in morsel.value for morsel in page.cookies.values())
    listed = client.get("/accounts/tokens/").content.decode()
    assert key[:8] in listed and key not in listed
    client.post("/accounts/tokens/", {"action": "revoke", "id": key[:8]})
    assert not Token.objects.filter(user=users["charlie"]).exists()


def test_it_keeps_the_token_on_logout_and_says_so_unless_asked_to_revoke(users):
    key = _obtain("charlie", "pw-charlie-123")
    client = Client()
    client.force_login(users["charlie"])
    page = client.post("/accounts/logout/", follow=True)
    assert b"Your API token still works" in page.content
    assert _token_client(key).get("/api/v1/auth/tokens/").status_code == 200
    client.force_login(users["charlie"])
    page = client.post("/accounts/logout/", {"revoke_token": "1"}, follow=True)
    assert b"your API token is revoked" in page.content
    assert _token_client(key).get("/api/v1/auth/tokens/").status_code == 401

"""OpenID Connect sign-in against a real provider (npm's oidc-provider on Node.js)."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages

from challenges.models import ExternalIdentity, HostTeamMember
from tests.identity.conftest import (
    CALLBACK,
    CAST,
    finish_sign_in,
    sign_in,
    start_sign_in,
    use_provider,
)
from tests.identity.servers import start_oidc_provider

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]
User = get_user_model()


def signed_in_as(client):
    answer = client.get("/accounts/tokens/")
    return answer.context["user"].username if answer.status_code == 200 else None


def flashes(answer) -> str:
    return " ".join(str(m) for m in get_messages(answer.wsgi_request))


def test_the_login_page_offers_the_provider(oidc, client):
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Example SSO" in page
    assert 'href="/oidc/authenticate/"' in page


def test_first_sign_in_creates_the_user_with_the_providers_roles(oidc, client):
    answer = sign_in(client, "alice")
    assert answer.status_code == 302 and answer["Location"] == "/"
    user = User.objects.get(email="alice@example.org")
    assert (user.username, user.first_name, user.last_name) == ("alice", "Alice", "Archer")
    assert not user.has_usable_password()
    assert user.is_staff and user.is_superuser
    assert HostTeamMember.objects.filter(user=user, team__name="Data Science").exists()
    identity = ExternalIdentity.objects.get(user=user)
    assert identity.subject == f"{oidc.issuer} alice"
    assert signed_in_as(client) == "alice"


def test_a_group_removed_at_the_provider_takes_the_role_away_at_the_next_sign_in(
    oidc, client, django_user_model
):
    sign_in(client, "alice")
    client.logout()
    oidc.set_users({**CAST, "alice": {**CAST["alice"], "groups": ["ds-hosts"]}})
    sign_in(client, "alice")
    alice = User.objects.get(username="alice")
    assert not alice.is_staff and not alice.is_superuser
    assert HostTeamMember.objects.filter(user=alice, team__name="Data Science").exists()

    client.logout()
    oidc.set_users({**CAST, "alice": {**CAST["alice"], "groups": []}})
    sign_in(client, "alice")
    assert not HostTeamMember.objects.filter(user=alice, team__name="Data Science").exists()
    assert User.objects.filter(email="alice@example.org").count() == 1


def test_a_local_account_with_the_same_name_and_email_is_not_taken_over(oidc, client):
    squatter = User.objects.create_user("alice", "alice@example.org", "squatter-pw-1")
    sign_in(client, "alice")
    real = ExternalIdentity.objects.get().user
    assert real.pk != squatter.pk
    assert real.username == "alice-2"
    assert signed_in_as(client) == "alice-2"


def test_a_replayed_callback_is_refused(oidc, client):
    callback = start_sign_in(client, "dave")
    assert finish_sign_in(client, callback).status_code == 302
    client.logout()
    again = finish_sign_in(client, callback)
    assert again.status_code == 302 and again["Location"] == "/accounts/login/"
    assert "did not complete" in flashes(again)
    assert signed_in_as(client) is None


def test_a_callback_from_another_browser_is_refused(oidc, client):
    from django.test import Client

    callback = start_sign_in(client, "dave")
    other = Client()
    answer = finish_sign_in(other, callback)
    assert answer.status_code == 302 and answer["Location"] == "/accounts/login/"
    assert signed_in_as(other) is None
    assert not User.objects.filter(username="dave").exists()


def test_an_id_token_carrying_another_nonce_is_refused(oidc, client, caplog):
    callback = start_sign_in(client, "dave")
    state = dict(p.split("=", 1) for p in callback.split("?", 1)[1].split("&"))["state"]
    session = client.session
    session["oidc_states"][state]["nonce"] = "a-nonce-this-browser-never-sent"
    session.save()
    with caplog.at_level(logging.WARNING):
        answer = finish_sign_in(client, callback)
    assert answer["Location"] == "/accounts/login/"
    assert "Nonce verification failed" in caplog.text
    assert not User.objects.filter(username="dave").exists()


def test_a_code_exchanged_without_its_pkce_verifier_is_refused(oidc, client, caplog):
    callback = start_sign_in(client, "dave")
    state = dict(p.split("=", 1) for p in callback.split("?", 1)[1].split("&"))["state"]
    session = client.session
    session["oidc_states"][state]["code_verifier"] = "x" * 64
    session.save()
    with caplog.at_level(logging.WARNING):
        answer = finish_sign_in(client, callback)
    assert answer["Location"] == "/accounts/login/"
    assert "invalid_grant" in caplog.text  # the provider itself refused the code
    assert not User.objects.filter(username="dave").exists()


def test_an_expired_id_token_is_refused(settings, client, tmp_path, caplog):
    # A provider whose clock is 15 minutes slow issues 5-minute tokens that have expired
    # by ours: they are real, correctly signed tokens, and must still be refused.
    slow = start_oidc_provider(
        tmp_path / "slow",
        redirect_uris=[CALLBACK],
        users=CAST,
        CLOCK_OFFSET_S="-900",
        ID_TOKEN_TTL_S="300",
    )
    try:
        use_provider(settings, slow.issuer)
        with caplog.at_level(logging.WARNING):
            answer = sign_in(client, "dave")
    finally:
        slow.stop()
    assert answer["Location"] == "/accounts/login/"
    assert "expired" in caplog.text.lower()
    assert not User.objects.filter(username="dave").exists()


def test_a_provider_that_does_not_answer_gives_a_message_not_an_error(settings, client):
    from tests.services import spare_port

    use_provider(settings, f"http://127.0.0.1:{spare_port()}")
    answer = client.get("/oidc/authenticate/")
    assert answer.status_code == 302 and answer["Location"] == "/accounts/login/"
    assert "does not answer" in flashes(answer)


def test_an_address_outside_the_sites_domains_is_refused_at_first_sign_in(oidc, client, settings):
    settings.ALLOWED_EMAIL_DOMAINS = ["corp.example"]
    answer = sign_in(client, "dave")
    assert answer["Location"] == "/accounts/login/"
    assert "open only to email addresses at corp.example" in flashes(answer)
    assert not User.objects.filter(username="dave").exists()


def test_an_address_the_provider_has_not_verified_does_not_pass_the_domain_rule(
    oidc, client, settings
):
    settings.ALLOWED_EMAIL_DOMAINS = ["example.org"]
    oidc.set_users({"dave": {**CAST["dave"], "email_verified": False}})
    answer = sign_in(client, "dave")
    assert answer["Location"] == "/accounts/login/"
    assert "open only to email addresses at example.org" in flashes(answer)
    assert not User.objects.filter(username="dave").exists()


def test_a_deactivated_users_session_ends(oidc, client):
    sign_in(client, "dave")
    User.objects.filter(username="dave").update(is_active=False)
    assert signed_in_as(client) is None


def test_the_token_endpoint_tells_sso_users_where_their_token_is(oidc, client):
    sign_in(client, "dave")
    answer = client.post("/api/v1/auth/token/", {"username": "dave", "password": "x"})
    assert answer.status_code == 400
    assert "/accounts/tokens/" in answer.json()["detail"]

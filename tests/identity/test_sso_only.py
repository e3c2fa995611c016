"""SSO-only mode: no sign-up, local passwords or password reset, except for the
break-glass admin that `manage.py create_breakglass_admin` makes."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command

from challenges.models import BreakGlassAdmin
from tests.identity.conftest import sign_in

pytestmark = [pytest.mark.django_db]
User = get_user_model()


@pytest.fixture
def sso_only(settings):
    settings.SSO_ONLY = True
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Example SSO"
    settings.AUTHENTICATION_BACKENDS = [
        "challenges.identity.local.LocalPasswordBackend",
        "challenges.identity.oidc.OIDCBackend",
    ]


def breakglass(username="rescue", password="rescue-long-passphrase-1"):  # noqa: S107
    out = io.StringIO()
    call_command(
        "create_breakglass_admin",
        username,
        "--email",
        "rescue@example.org",
        "--password-stdin",
        stdin=io.StringIO(password + "\n"),
        stdout=out,
    )
    return out.getvalue()


def test_sign_up_is_off(sso_only, client):
    answer = client.post(
        "/accounts/signup/",
        {
            "username": "zoe",
            "email": "zoe@example.org",
            "password1": "zoe-long-passphrase-1",
            "password2": "zoe-long-passphrase-1",
        },
    )
    assert answer.status_code == 302 and answer["Location"] == "/accounts/login/"
    assert not User.objects.filter(username="zoe").exists()
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Example SSO" in page
    assert 'href="/accounts/signup/"' not in page
    assert "Forgot your password?" not in page
    # The challenge page's "Sign up to take part" link still lands where it meant to.
    answer = client.get("/accounts/signup/?next=/challenges/3/")
    assert answer["Location"] == "/accounts/login/?next=%2Fchallenges%2F3%2F"


def test_a_local_password_no_longer_signs_in_anywhere(sso_only, client, users):
    users["charlie"].set_password("charlie-pw-123")
    users["charlie"].save()
    assert (
        client.post(
            "/accounts/login/", {"username": "charlie", "password": "charlie-pw-123"}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/api/v1/auth/token/", {"username": "charlie", "password": "charlie-pw-123"}
        ).status_code
        == 400
    )
    assert (
        client.post("/admin/login/", {"username": "admin", "password": "whatever"}).status_code
        == 200
    )


def test_a_session_from_a_local_password_ends_when_sso_only_is_turned_on(settings, client, users):
    client.force_login(users["charlie"], backend="challenges.identity.local.LocalPasswordBackend")
    assert client.get("/accounts/tokens/").status_code == 200
    settings.SSO_ONLY = True
    settings.OIDC_ENABLED = True
    assert client.get("/accounts/tokens/").status_code == 302


def test_the_breakglass_admin_signs_in_with_a_password(sso_only, client):
    assert "'rescue' is ready" in breakglass()
    user = User.objects.get(username="rescue")
    assert user.is_superuser and user.is_staff
    assert BreakGlassAdmin.objects.filter(user=user).exists()
    answer = client.post(
        "/accounts/login/", {"username": "rescue", "password": "rescue-long-passphrase-1"}
    )
    assert answer.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_breakglass_command_prints_a_generated_password_once(sso_only, client):
    out = io.StringIO()
    call_command("create_breakglass_admin", "rescue", stdout=out)
    password = out.getvalue().rsplit(": ", 1)[1].strip()
    assert len(password) >= 20
    assert (
        client.post(
            "/admin/login/?next=/admin/", {"username": "rescue", "password": password}
        ).status_code
        == 302
    )


def test_the_breakglass_command_refuses_an_sso_account(sso_only):
    from challenges.models import ExternalIdentity

    user = User.objects.create_user("erin", "erin@example.org")
    ExternalIdentity.objects.create(user=user, provider="ldap", subject="erin")
    with pytest.raises(CommandError, match="signs in through the identity provider"):
        breakglass("erin")


def test_password_reset_mails_only_the_breakglass_admin(sso_only, client, users):
    breakglass()
    users["charlie"].email = "charlie@example.org"
    users["charlie"].set_password("charlie-pw-123")
    users["charlie"].save()
    client.post("/accounts/password-reset/", {"email": "charlie@example.org"})
    assert mail.outbox == []
    client.post("/accounts/password-reset/", {"email": "rescue@example.org"})
    assert [m.to for m in mail.outbox] == [["rescue@example.org"]]


def test_password_change_is_off_for_everyone_else(sso_only, client, users):
    client.force_login(users["charlie"], backend="challenges.identity.oidc.OIDCBackend")
    answer = client.get("/accounts/password/")
    assert answer.status_code == 302 and answer["Location"] == "/accounts/tokens/"


@pytest.mark.e2e
def test_sso_users_still_sign_in_and_get_a_token_for_the_cli(oidc, settings, client):
    settings.SSO_ONLY = True
    sign_in(client, "dave")
    page = client.get("/accounts/tokens/").content.decode()
    assert "--token-stdin" in page and "evalai set-token" in page
    assert "Change your password" not in page
    client.post("/accounts/tokens/", {"action": "rotate"})
    from rest_framework.authtoken.models import Token

    token = Token.objects.get(user__username="dave")
    api = client.get("/api/v1/auth/tokens/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.status_code == 200

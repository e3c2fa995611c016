"""LDAP sign-in against a real slapd started for the tests (Debian's)."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import get_user_model

from challenges.identity.ldap_config import ldap_settings
from challenges.models import ExternalIdentity, HostTeamMember

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]
User = get_user_model()
_names = itertools.count(1)


def configure(settings, server, **extra: str) -> None:
    values = {
        "LDAP_SERVER_URI": server.uri,
        "LDAP_USER_SEARCH_BASE": server.people,
        "LDAP_GROUP_SEARCH_BASE": server.groups,
        **extra,
    }

    def env(name: str, default: str = "") -> str:
        return values.get(name, default)

    def envbool(name: str, default: bool) -> bool:
        return values[name] == "true" if name in values else default

    def envint(name: str, default: int) -> int:
        return int(values.get(name, default))

    for name, value in ldap_settings(env, envbool, envint).items():
        setattr(settings, name, value)
    settings.LDAP_ENABLED = True
    settings.AUTHENTICATION_BACKENDS = [
        "challenges.identity.local.LocalPasswordBackend",
        "challenges.identity.ldap.LDAPBackend",
    ]
    settings.SSO_ADMIN_GROUPS = ["evalserver-admins"]
    settings.SSO_HOST_TEAM_GROUPS = {"ds-hosts": "Data Science"}


@pytest.fixture
def directory(slapd_server, settings):
    """A fresh person in the directory for each test (the server is shared): in both
    mapped groups at first."""
    uid = f"erin{next(_names)}"
    dn = slapd_server.add_user(
        uid, "erin-ldap-pw", mail=f"{uid}@example.org", given="Erin", sn="Eagle"
    )
    slapd_server.set_group("evalserver-admins", [dn])
    slapd_server.set_group("ds-hosts", [dn])
    configure(settings, slapd_server)
    return slapd_server, uid, dn


def log_in(client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_a_directory_password_signs_in_and_creates_the_user(directory, client):
    server, uid, _ = directory
    answer = log_in(client, uid, "erin-ldap-pw")
    assert answer.status_code == 302, answer.content[:500]
    user = User.objects.get(username=uid)
    assert (user.email, user.first_name, user.last_name) == (f"{uid}@example.org", "Erin", "Eagle")
    assert not user.has_usable_password()
    assert ExternalIdentity.objects.get(user=user).provider == "ldap"
    assert user.is_staff and user.is_superuser
    assert HostTeamMember.objects.filter(user=user, team__name="Data Science").exists()


def test_a_wrong_directory_password_is_refused(directory, client):
    _, uid, _ = directory
    answer = log_in(client, uid, "not-erins-password")
    assert answer.status_code == 200
    assert "Please enter a correct username and password" in answer.content.decode()
    assert not User.objects.filter(username=uid).exists()


def test_leaving_a_group_in_the_directory_takes_the_role_away(directory, client):
    server, uid, dn = directory
    log_in(client, uid, "erin-ldap-pw")
    client.logout()
    server.set_group("evalserver-admins", [])
    server.set_group("ds-hosts", [])
    assert log_in(client, uid, "erin-ldap-pw").status_code == 302
    user = User.objects.get(username=uid)
    assert not user.is_staff and not user.is_superuser
    assert not HostTeamMember.objects.filter(user=user).exists()
    assert User.objects.filter(email=f"{uid}@example.org").count() == 1


def test_a_local_namesake_is_not_taken_over_by_the_directory_account(directory, client):
    _, uid, _ = directory
    squatter = User.objects.create_user(uid, f"{uid}@example.org", "squatter-pw-123")
    assert log_in(client, uid, "erin-ldap-pw").status_code == 302
    linked = ExternalIdentity.objects.get(provider="ldap", subject=uid).user
    assert linked.pk != squatter.pk and linked.username == f"{uid}-2"
    # The squatter's own password still opens only the squatter's account.
    client.logout()
    assert log_in(client, uid, "squatter-pw-123").status_code == 302
    assert client.get("/accounts/tokens/").context["user"].pk == squatter.pk


def test_a_deactivated_user_is_refused_and_their_session_ends(directory, client):
    _, uid, _ = directory
    assert log_in(client, uid, "erin-ldap-pw").status_code == 302
    User.objects.filter(username=uid).update(is_active=False)
    assert client.get("/accounts/tokens/").status_code == 302  # back to the login page
    assert log_in(client, uid, "erin-ldap-pw").status_code == 200
    answer = client.post("/api/v1/auth/token/", {"username": uid, "password": "erin-ldap-pw"})
    assert answer.status_code == 400


def test_the_api_token_endpoint_takes_directory_passwords(directory, client):
    _, uid, _ = directory
    answer = client.post("/api/v1/auth/token/", {"username": uid, "password": "erin-ldap-pw"})
    assert answer.status_code == 200 and answer.json()["token"]


def test_starttls_with_the_sites_ca_signs_in_and_a_stranger_ca_is_refused(
    slapd_server, settings, client, tmp_path
):
    from tests.identity.servers import start_slapd
    from tests.identity.tls import make_ca_and_server_cert

    files = make_ca_and_server_cert(tmp_path / "pki", host="127.0.0.1")
    server = start_slapd(tmp_path / "slapd-tls", tls=files)
    try:
        server.add_user("tess", "tess-ldap-pw", mail="tess@example.org")
        configure(
            settings,
            server,
            LDAP_START_TLS="true",
            LDAP_CA_FILE=str(files["ca"]),
            LDAP_REQUIRE_CERT="demand",
        )
        assert log_in(client, "tess", "tess-ldap-pw").status_code == 302
        client.logout()

        stranger = make_ca_and_server_cert(tmp_path / "other-pki", host="127.0.0.1")
        configure(
            settings,
            server,
            LDAP_START_TLS="true",
            LDAP_CA_FILE=str(stranger["ca"]),
            LDAP_REQUIRE_CERT="demand",
        )
        answer = log_in(client, "tess", "tess-ldap-pw")
        assert answer.status_code == 200  # the certificate is not trusted: no sign-in
    finally:
        server.stop()

"""Fixtures for company sign-in: a real OpenID Connect provider and a real slapd.

The provider's cast (its users file; groups decide roles here):
- alice: in "evalserver-admins" (site admin) and "ds-hosts" (the "Data Science" host team)
- dave: in no group; an ordinary participant
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from challenges.identity.oidc import forget_metadata
from tests.conftest import require_service
from tests.identity.servers import (
    CLIENT_ID,
    CLIENT_SECRET,
    node_ready,
    provider_login,
    start_oidc_provider,
    start_slapd,
)

CALLBACK = "http://testserver/oidc/callback/"
CAST = {
    "alice": {
        "email": "alice@example.org",
        "given_name": "Alice",
        "family_name": "Archer",
        "groups": ["evalserver-admins", "ds-hosts"],
    },
    "dave": {"email": "dave@example.org", "given_name": "Dave", "groups": []},
}
OIDC_BACKENDS = [
    "challenges.identity.local.LocalPasswordBackend",
    "challenges.identity.oidc.OIDCBackend",
]


@pytest.fixture(scope="session")
def oidc_server(tmp_path_factory):
    missing = node_ready()
    require_service(missing or "node", not missing)
    provider = start_oidc_provider(
        tmp_path_factory.mktemp("oidc"), redirect_uris=[CALLBACK], users=CAST
    )
    yield provider
    provider.stop()


def use_provider(settings, issuer: str) -> None:
    settings.OIDC_DISCOVERY_URL = issuer
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Example SSO"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.AUTHENTICATION_BACKENDS = OIDC_BACKENDS
    settings.SSO_ADMIN_GROUPS = ["evalserver-admins"]
    settings.SSO_HOST_TEAM_GROUPS = {"ds-hosts": "Data Science"}
    forget_metadata()


@pytest.fixture
def oidc(oidc_server, settings):
    """The session's provider with the cast as above, and this site configured for it."""
    oidc_server.set_users(CAST)
    use_provider(settings, oidc_server.issuer)
    yield oidc_server
    forget_metadata()


def start_sign_in(client, login: str) -> str:
    """Start signing in on this site, sign in at the provider; the callback URL it sends
    the browser back to (not yet followed)."""
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302, start
    return provider_login(start["Location"], login, CALLBACK)


def finish_sign_in(client, callback_url: str):
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def sign_in(client, login: str):
    return finish_sign_in(client, start_sign_in(client, login))


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory):
    import shutil

    require_service("slapd (apt-get install slapd ldap-utils)", bool(shutil.which("slapd")))
    try:
        import ldap  # noqa: F401
    except ImportError:
        require_service("python-ldap (pip install 'evalserver[ldap]')", False)
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()

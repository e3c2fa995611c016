"""mozilla-django-oidc's settings from OIDC_* variables (documented in .env.example and
docs/deployment.md, "Company sign-in"), beside ldap_config for LDAP. Read by settings.py.

Authorization code flow with PKCE and a nonce, always; the endpoints come from the
provider's discovery document (challenges.identity.oidc)."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured


def oidc_settings(
    env: Callable[[str, str], str],
    envbool: Callable[[str, bool], bool],
    envint: Callable[[str, int], int],
) -> dict[str, object]:
    discovery_url = env("OIDC_DISCOVERY_URL", "")
    client_id = env("OIDC_CLIENT_ID", "")
    if discovery_url and not client_id:
        raise ImproperlyConfigured(
            "OIDC_DISCOVERY_URL is set but OIDC_CLIENT_ID is not: register this site as a client "
            "at the identity provider (redirect URI: SITE_URL + /oidc/callback/) and set both."
        )
    return {
        "OIDC_DISCOVERY_URL": discovery_url,
        "OIDC_PROVIDER_NAME": env("OIDC_PROVIDER_NAME", "") or "single sign-on",
        "OIDC_RP_CLIENT_ID": client_id,
        "OIDC_RP_CLIENT_SECRET": env("OIDC_CLIENT_SECRET", ""),
        "OIDC_RP_SCOPES": env("OIDC_SCOPES", "openid email profile"),
        "OIDC_RP_SIGN_ALGO": env("OIDC_SIGN_ALGO", "RS256"),
        "OIDC_USERNAME_CLAIM": env("OIDC_USERNAME_CLAIM", "preferred_username"),
        "OIDC_GROUPS_CLAIM": env("OIDC_GROUPS_CLAIM", "groups"),
        "OIDC_USE_PKCE": True,
        "OIDC_USE_NONCE": True,
        "OIDC_TOKEN_USE_BASIC_AUTH": envbool("OIDC_TOKEN_USE_BASIC_AUTH", False),
        "OIDC_TIMEOUT": envint("OIDC_TIMEOUT_S", 10),
        # requests' `verify`: a CA bundle for a provider behind the company's own CA.
        "OIDC_VERIFY_SSL": env("OIDC_CA_FILE", "") or envbool("OIDC_VERIFY_TLS", True),
        "OIDC_DISCOVERY_CACHE_S": envint("OIDC_DISCOVERY_CACHE_S", 3600),
        "OIDC_AUTHENTICATION_CALLBACK_URL": "oidc-callback",
        "LOGIN_REDIRECT_URL_FAILURE": "login",
    }

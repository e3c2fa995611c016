"""What every page needs to know about how people sign in here."""

from __future__ import annotations

from django.conf import settings


def sign_in(request) -> dict:
    return {
        "sign_in": {
            "oidc": settings.OIDC_ENABLED,
            "provider_name": settings.OIDC_PROVIDER_NAME,
            "ldap": settings.LDAP_ENABLED,
            "sso_only": settings.SSO_ONLY,
            "signup_open": not settings.SSO_ONLY,
        }
    }

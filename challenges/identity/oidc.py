"""OpenID Connect through mozilla-django-oidc, with the endpoints from discovery.

The library does the protocol: state, nonce, PKCE, the code exchange and the signature
check against the provider's keys. It wants each endpoint as a setting; we read them
from the provider's discovery document instead (one URL to configure, and the keys'
location follows the provider), and add what it leaves out: the issuer and audience of
the ID token, and refusing rather than raising on a token that fails a check.
"""

from __future__ import annotations

import logging
import threading
import time

import jwt
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from challenges.identity.accounts import IdentityRefused, user_for_identity
from challenges.identity.roles import user_sync_roles
from challenges.models import ExternalIdentity

log = logging.getLogger(__name__)

_lock = threading.Lock()
_documents: dict[str, tuple[float, dict]] = {}
REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class DiscoveryError(ImproperlyConfigured):
    """The provider's discovery document cannot be had or lacks what sign-in needs."""


def discovery_url() -> str:
    url = settings.OIDC_DISCOVERY_URL.rstrip("/")
    if not url.endswith("/.well-known/openid-configuration"):
        url += "/.well-known/openid-configuration"
    return url


def provider_metadata() -> dict:
    """The provider's discovery document, fetched once per OIDC_DISCOVERY_CACHE_S."""
    url = discovery_url()
    with _lock:
        cached = _documents.get(url)
        if cached and time.monotonic() - cached[0] < settings.OIDC_DISCOVERY_CACHE_S:
            return cached[1]
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryError(f"cannot read the provider's discovery document {url}: {exc}") from exc
    missing = (
        [key for key in REQUIRED if not document.get(key)]
        if isinstance(document, dict)
        else REQUIRED
    )
    if missing:
        raise DiscoveryError(f"the discovery document {url} lacks {', '.join(missing)}")
    with _lock:
        _documents[url] = (time.monotonic(), document)
    return document


def forget_metadata() -> None:
    """Read the discovery document again at the next sign-in (tests; rotated providers)."""
    with _lock:
        _documents.clear()


class OIDCBackend(OIDCAuthenticationBackend):
    """The library's backend, configured from discovery, creating users through
    `user_for_identity` and mapping groups through `user_sync_roles`."""

    def __init__(self, *args, **kwargs) -> None:
        # Django builds every backend for every password sign-in too: nothing here may
        # reach the provider, so the endpoints are read when a code comes back.
        from django.contrib.auth import get_user_model

        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:  # noqa: N802  (the library's names)
        return provider_metadata()["token_endpoint"]

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:  # noqa: N802
        return provider_metadata().get("userinfo_endpoint", "")

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:  # noqa: N802
        return provider_metadata()["jwks_uri"]

    def authenticate(self, request, **kwargs):
        # Only the callback view passes the nonce it stored with the state. Without this,
        # a password form posted to a URL carrying ?code=...&state=... would reach the
        # provider here with no state or nonce of ours to check.
        if kwargs.get("nonce") is None:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except (SuspiciousOperation, jwt.InvalidTokenError, requests.RequestException) as exc:
            # A code that is wrong, used or expired, a token that fails a check, or a
            # provider that does not answer: the person is not signed in, and is told so.
            log.warning("OpenID Connect sign-in refused: %s", exc)
            return None

    def _verify_jws(self, payload, key):
        """The library checks the signature and expiry; the token must also be this
        provider's (iss) and for this site (aud)."""
        header = jwt.get_unverified_header(payload)
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation(
                f"the ID token is signed with {header.get('alg')!r}, not OIDC_SIGN_ALGO="
                f"{self.OIDC_RP_SIGN_ALGO!r}"
            )
        return jwt.decode(
            payload,
            key,
            algorithms=[self.OIDC_RP_SIGN_ALGO],
            audience=self.OIDC_RP_CLIENT_ID,
            issuer=provider_metadata()["issuer"],
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims, completed by the userinfo endpoint when there is one
        (the token's own `sub` wins: it was signed)."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            info = super().get_userinfo(access_token, id_token, payload)
            if info.get("sub") not in (None, payload.get("sub")):
                raise SuspiciousOperation("the userinfo endpoint answered for another subject")
            claims.update({k: v for k, v in info.items() if k != "sub"})
        claims["iss"] = payload.get("iss")
        return claims

    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub"))

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        if not self.verify_claims(claims):
            raise SuspiciousOperation("the provider's answer names no subject (sub)")
        # An address the provider itself has not verified must not pass the site's or a
        # challenge's email-domain rules (a provider may let users type in their own).
        email = "" if claims.get("email_verified") is False else str(claims.get("email") or "")
        try:
            user = user_for_identity(
                provider=ExternalIdentity.Provider.OIDC,
                subject=f"{claims['iss']} {claims['sub']}",
                username=str(claims.get(settings.OIDC_USERNAME_CLAIM) or email.partition("@")[0]),
                email=email,
                first_name=str(claims.get("given_name") or ""),
                last_name=str(claims.get("family_name") or ""),
            )
        except IdentityRefused as exc:
            self.request.oidc_refusal = str(exc)  # shown on the login page (views.sso)
            return None
        groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
        if isinstance(groups, str):
            groups = [groups]
        user_sync_roles(user=user, groups=groups)
        return user

    def get_user(self, user_id):
        # The library's get_user skips Django's is_active check: a deactivated user's
        # session must end here as it does for password sessions.
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

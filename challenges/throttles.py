"""Rate limits on what strangers can push: sign-in, token, sign-up, password reset and
submitting.

DRF's own throttles (a counter per key in Django's cache), used by the API views as
`throttle_classes` and by the account pages, so one set of
settings (`THROTTLE_RATES`, one environment variable per scope, see .env.example) tunes
both (`frontend.views.common.throttle_page`). Each answers 429 with `Retry-After`. The cache must be shared by every web process
for the limits to hold across them: set `CACHE_URL=redis://...` in production (the
default, a per-process memory cache, limits each process on its own).

Sign-in style scopes count per client address *and* per username: the address alone lets
a botnet guess one account's password; the username alone lets one address try every
account.
"""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class ScopedThrottle(SimpleRateThrottle):
    """A rate per scope, read from settings.THROTTLE_RATES when the request comes (so
    tests and operators can change it without a restart of the class). An empty or
    missing rate turns the scope off."""

    scope = ""

    def __init__(self):
        # SimpleRateThrottle reads DRF's rates at import; ours are read per request.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_rate(self) -> str | None:
        return settings.THROTTLE_RATES.get(self.scope) or None

    def key_part(self, request) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request, view) -> str | None:
        part = self.key_part(request)
        if part is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": part}


class PerAddress(ScopedThrottle):
    def key_part(self, request) -> str | None:
        return self.get_ident(request)


class PerUsername(ScopedThrottle):
    """Keyed by the username the request names (form or JSON), case-folded; the email
    where there is no username (password reset)."""

    fields = ("username", "email")

    def key_part(self, request) -> str | None:
        data = getattr(request, "data", None)
        if data is None:
            data = request.POST
        if not hasattr(data, "get"):
            return None
        # Password reset names an email, the others a username: either identifies the target.
        username = next((data.get(f) for f in self.fields if data.get(f)), None)
        if not username or not isinstance(username, str):
            return None
        # Hashed: a username may hold anything, a cache key may not (memcached refuses
        # spaces and control characters).
        return hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]


class PerEmail(PerUsername):
    """Keyed by the email the request names: sign-up mails a known address's owner, and
    nobody may use that to flood one inbox."""

    fields = ("email",)


class PerUser(ScopedThrottle):
    def key_part(self, request) -> str | None:
        user = getattr(request, "user", None)
        return str(user.pk) if user is not None and user.is_authenticated else None


@functools.cache
def throttle(scope: str, kind: type[ScopedThrottle]) -> type[ScopedThrottle]:
    """A throttle class for `scope`, for a view's `throttle_classes` (one per pair, made
    once: pages ask for theirs on every request)."""
    return type(f"{kind.__name__}_{scope}", (kind,), {"scope": scope})


def token_throttles() -> list[type[ScopedThrottle]]:
    return [throttle("token_ip", PerAddress), throttle("token_user", PerUsername)]


def submit_throttles() -> list[type[ScopedThrottle]]:
    return [throttle("submit_user", PerUser)]

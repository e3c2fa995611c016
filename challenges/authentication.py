"""The API's token authentication. Its own small module: DRF imports it while defining
APIView, so it must not import views or models at module level."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from challenges.prepared import Prepared


def _token_with_user(key: str):
    from rest_framework.authtoken.models import Token

    return Token.objects.select_related("user").filter(key=key)


# What DRF's TokenAuthentication reads, compiled once: every API request asks
# (challenges.prepared).
_TOKEN = Prepared(_token_with_user, str)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing tokens older than TOKEN_TTL_DAYS."""

    def authenticate_credentials(self, key):
        from challenges.services.tokens import token_is_expired

        # Keys are 40 hex digits; anything else (a NUL, which PostgreSQL refuses in a query
        # and so would answer 500) matches no token and need not reach the database.
        if not (isinstance(key, str) and len(key) <= 64 and key.isascii() and key.isalnum()):
            raise exceptions.AuthenticationFailed("Invalid token.")
        found = _TOKEN(key)
        if found and found[0].user.is_active:
            token = found[0]
            user = token.user
        else:
            # DRF's own refusal, with its message (an invalid token, an inactive user).
            user, token = super().authenticate_credentials(key)
        if token_is_expired(token):
            raise exceptions.AuthenticationFailed(
                "This API token has expired: get a new one at /accounts/tokens/ or "
                "POST /api/v1/auth/token/."
            )
        return user, token

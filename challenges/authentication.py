"""The API's token authentication. Its own small module: DRF imports it while defining
APIView, so it must not import views or models at module level."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing tokens older than TOKEN_TTL_DAYS."""

    def authenticate_credentials(self, key):
        from challenges.services.tokens import token_is_expired

        user, token = super().authenticate_credentials(key)
        if token_is_expired(token):
            raise exceptions.AuthenticationFailed(
                "This API token has expired: get a new one at /accounts/tokens/ or "
                "POST /api/v1/auth/token/."
            )
        return user, token

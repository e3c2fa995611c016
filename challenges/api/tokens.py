"""REST API: obtain, list, revoke and rotate API tokens (see challenges.services.tokens for
the choice of DRF's table; challenges.authentication honours TOKEN_TTL_DAYS)."""

from __future__ import annotations

from django.conf import settings
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from challenges.services.tokens import (
    token_expires_at,
    token_get_or_create,
    token_public_id,
    token_revoke,
    token_rotate,
)
from challenges.throttles import token_throttles


def _token_out(token) -> dict:
    expires = token_expires_at(token)
    return {
        "id": token_public_id(token),
        "created": token.created.isoformat(),
        "expires_at": expires.isoformat() if expires else None,
    }


class TokenObtain(ObtainAuthToken):
    """Trade a username and password for the user's API token (throttled per address and
    per username)."""

    throttle_classes = token_throttles()
    # DRF's view names the unbounded JSONParser itself; ours bounds depth and size.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: OpenApiResponse(description="{token, id, created, expires_at}"),
            429: OpenApiResponse(description="too many attempts; see Retry-After"),
        },
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            errors = dict(serializer.errors)
            if settings.OIDC_ENABLED:
                # Their password is the provider's, which this endpoint never sees.
                errors["detail"] = _(
                    "Accounts that sign in with %(provider)s have no password here: create "
                    "a token at %(url)s and give it to your tool instead."
                ) % {
                    "provider": settings.OIDC_PROVIDER_NAME,
                    "url": request.build_absolute_uri("/accounts/tokens/"),
                }
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        token = token_get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key, **_token_out(token)})


class TokenList(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=OpenApiResponse(description="[{id, created, expires_at}]"))
    def get(self, request):
        """Your API tokens (never their keys)."""
        from rest_framework.authtoken.models import Token

        return Response([_token_out(t) for t in Token.objects.filter(user=request.user)])


class TokenDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None, 404: OpenApiResponse(description="no such token")})
    def delete(self, request, token_id: str):
        """Revoke one of your tokens: it stops working at once."""
        if not token_revoke(user=request.user, public_id=token_id):
            return Response({"detail": _("You have no token with that id.")}, status=404)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRotate(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=OpenApiResponse(description="{token, id, ...}"))
    def post(self, request):
        """Replace your token with a new one; the old one stops working at once."""
        token = token_rotate(user=request.user)
        return Response({"token": token.key, **_token_out(token)})


urlpatterns = [
    path("auth/token/", TokenObtain.as_view(), name="api-token"),
    path("auth/tokens/", TokenList.as_view(), name="api-tokens"),
    path("auth/tokens/rotate/", TokenRotate.as_view(), name="api-token-rotate"),
    path("auth/tokens/<str:token_id>/", TokenDetail.as_view(), name="api-token-detail"),
]

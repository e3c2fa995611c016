"""What every EvalAI-shaped view shares: `Bearer` tokens, EvalAI's error bodies and
pagination, its date format, and signed file links (EvalAI hands out presigned S3 URLs,
which its clients fetch without a token)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext as _
from rest_framework import exceptions, permissions, status
from rest_framework.authentication import (
    BaseAuthentication,
    TokenAuthentication,
    get_authorization_header,
)
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from challenges.api.errors import exception_handler as project_exception_handler
from challenges.services.storage import safe_basename
from challenges.services.submissions import QuotaExceeded

FILE_SALT = "evalserver.evalai.file"


class EvalAITokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` (what EvalAI's clients send) or `Token <key>`.

    The key is checked by the project's own token authentication, so whatever rules it
    applies (revocation, expiry) apply here too.
    """

    keywords = (b"bearer", b"token")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid token"))
        try:
            key = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token")) from None
        return _token_authenticator().authenticate_credentials(key)

    def authenticate_header(self, request) -> str:
        return "Bearer"


def _token_authenticator() -> TokenAuthentication:
    for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if isinstance(cls, type) and issubclass(cls, TokenAuthentication):
            return cls()
    return TokenAuthentication()


def evalai_exception_handler(exc, context):
    """The project's answers, in EvalAI's shape: the message under `error` (its CLI prints
    `error`), 406 for what does not exist and 403 for a quota, as EvalAI answers (its CLI
    reports the message of a 400, 401, 403 or 406 only)."""
    if isinstance(exc, ObjectDoesNotExist):
        return Response({"error": _missing(exc, context)}, status=status.HTTP_406_NOT_ACCEPTABLE)
    response = project_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, QuotaExceeded):
        # EvalAI refuses a submission over quota with 403 (its CLI then prints why); the
        # body and Retry-After stay ours.
        response.status_code = status.HTTP_403_FORBIDDEN
    data = response.data if isinstance(response.data, dict) else {"detail": response.data}
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        detail = str(data.get("detail", ""))
        # EvalAI's clients compare `detail` with these exact strings.
        if "expired" in detail.lower():
            data["detail"] = "Token has expired"
        elif "invalid token" in detail.lower():
            data["detail"] = "Invalid token"
    if "error" not in data:
        data["error"] = _message(data)
    response.data = data
    return response


def _missing(exc: Exception, context) -> str:
    # The model whose DoesNotExist this is (or subclasses: access functions raise
    # subclasses that carry the names the reader may use).
    model = next(
        (
            c.__qualname__.split(".")[0]
            for c in type(exc).__mro__
            if c.__qualname__.endswith(".DoesNotExist")
        ),
        "",
    )
    names = {
        "Challenge": "Challenge",
        "ChallengePhase": "Challenge Phase",
        "ChallengePhaseSplit": "Challenge Phase Split",
        "Submission": "Submission",
        "ParticipantTeam": "Participant Team",
        "HostTeam": "Challenge Host Team",
        "ChallengeParticipation": "Participation",
    }
    what = names.get(model, "The object")
    kwargs = context.get("kwargs") or {}
    ids = [str(v) for v in kwargs.values() if str(v).isdigit()]
    if what == "The object":
        return "Not found."
    return f"{what} does not exist" if not ids else f"{what} does not exist ({', '.join(ids)})"


def _message(data: dict[str, Any]) -> str:
    if "detail" in data:
        return str(data["detail"])
    parts = []
    for field, value in data.items():
        text = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{field}: {text}")
    return " ".join(parts) or "The request was not valid."


class EvalAIView(APIView):
    authentication_classes = [EvalAITokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    # EvalAI's routes are not in our OpenAPI schema: /api/v1/ is the documented API.
    schema = None

    def get_exception_handler(self):
        return evalai_exception_handler


class EvalAIPagination(PageNumberPagination):
    """EvalAI's StandardResultSetPagination: `?page=`, 100 a page."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def paginated(view: APIView, rows, render) -> Response:
    paginator = EvalAIPagination()
    page = paginator.paginate_queryset(rows, view.request, view=view)
    return paginator.get_paginated_response([render(row) for row in page])


def evalai_date(value: dt.datetime | None) -> str | None:
    """EvalAI's dates: UTC with a `Z` (its CLI parses exactly `%Y-%m-%dT%H:%M:%S.%fZ`)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_link(request, *, submission_id: int, kind: str, name: str, **extra: Any) -> str:
    """A link to one of a submission's files that works without a token for a while, as
    EvalAI's presigned URLs do. The caller has already checked the reader may see it.
    The file name comes last: EvalAI's remote worker names its download after it."""
    token = signing.dumps({"s": submission_id, "k": kind, **extra}, salt=FILE_SALT)
    name = quote(safe_basename(name, default=f"{kind}.txt"))
    return request.build_absolute_uri(f"/api/jobs/files/{token}/{name}")


def read_file_link(token: str) -> dict[str, Any]:
    return signing.loads(token, salt=FILE_SALT, max_age=settings.EVALAI_FILE_URL_MAX_AGE_S)

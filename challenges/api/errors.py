"""One place that turns domain errors into HTTP answers (never a 500 for user input)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from challenges.access import AccessDenied, NotFoundWithChoices
from challenges.bundle import BundleError
from challenges.discussion.services import ForumRefused
from challenges.leaderboard_access import InvalidScope
from challenges.leaderboard_rules import UnknownLabel
from challenges.services.bundles import SameTitleExists
from challenges.services.participation import ParticipationError
from challenges.services.submissions import QuotaExceeded, StorageExceeded, SubmissionRefused
from challenges.services.webhooks import WebhookRefused
from challenges.text_checks import UnsafeText


def exception_handler(exc, context):
    if isinstance(exc, BundleError):
        return Response(
            {
                "detail": _("The challenge bundle has %(count)s problem(s); nothing was loaded.")
                % {"count": len(exc.errors)},
                "errors": [p.as_dict() for p in exc.errors],
                "warnings": [p.as_dict() for p in exc.warnings],
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, SubmissionRefused):
        return _refused(exc)
    if isinstance(exc, UnknownLabel):
        return Response(
            {"detail": str(exc), "field": "order_by", "labels": exc.labels},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, InvalidScope):
        return Response({"detail": str(exc), "field": "scope"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ParticipationError | WebhookRefused | UnsafeText | ForumRefused):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, AccessDenied):
        return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer would be its HTML 400 page, which says nothing of why.
        return Response(
            {
                "detail": _(
                    "The request body is larger than %(limit)s bytes; send files as uploads."
                )
                % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, SameTitleExists):
        return Response(
            {
                "detail": str(exc),
                "field": "new_challenge",
                "challenge": exc.existing.pk,
                "bundle_url": f"/api/v1/challenges/{exc.existing.pk}/bundle/",
            },
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, NotFoundWithChoices):
        # Says which phases or splits the reader may use (only those they may see).
        return Response(
            {"detail": str(exc), "field": exc.field, "choices": exc.choices},
            status=status.HTTP_404_NOT_FOUND,
        )
    if isinstance(exc, ObjectDoesNotExist):
        return Response({"detail": _("Not found.")}, status=status.HTTP_404_NOT_FOUND)
    return drf_exception_handler(exc, context)


def _refused(exc: SubmissionRefused) -> Response:
    body: dict = {"detail": str(exc)}
    if exc.field:
        body["field"] = exc.field
    headers = {}
    if isinstance(exc, StorageExceeded):
        body["storage"] = {"limit": exc.limit, "used": exc.used, "incoming": exc.incoming}
    if isinstance(exc, QuotaExceeded):
        body["quota"] = exc.quota
        body["resets_at"] = exc.resets_at.isoformat() if exc.resets_at else None
        if exc.resets_at:
            seconds = int((exc.resets_at - timezone.now()).total_seconds())
            headers["Retry-After"] = str(max(seconds, 1))
    return Response(body, status=exc.status_code, headers=headers)

"""Health for load balancers and container healthchecks (`/healthz`), and the queue and
worker status operators look at (`GET /api/v1/ops/status/`, staff only)."""

from __future__ import annotations

import json
import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count, Min
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

HEALTH_PATH = "/healthz"
# What a client is asked to wait before trying again while the database is away (a
# restart of PostgreSQL takes seconds).
DATABASE_RETRY_AFTER_S = 5

log = logging.getLogger(__name__)


class HealthCheckMiddleware:
    """Answers /healthz before anything checks the Host header or redirects to HTTPS: a
    container healthcheck calls http://127.0.0.1:8000/healthz, which production settings
    would otherwise refuse (ALLOWED_HOSTS) or redirect (SECURE_SSL_REDIRECT)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.path != HEALTH_PATH:
            return self.get_response(request)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            body, code = {"status": "ok", "database": "ok"}, 200
        except Exception as exc:  # the database is down: say so, do not raise
            body, code = {"status": "error", "database": type(exc).__name__}, 503
        return HttpResponse(json.dumps(body), status=code, content_type="application/json")


class DatabaseUnavailableMiddleware:
    """A view that could not reach the database answers 503 with Retry-After, not 500.

    While PostgreSQL restarts, every request fails on its first query; nothing the client
    sent was wrong, and the same request succeeds seconds later. Nothing was half done
    either: the request's transaction did not commit, and submission_create removes a
    stored file whose row was not written.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        message = _("The database is unavailable for a moment; try again in a few seconds.")
        if request.path.startswith("/api/"):
            response = HttpResponse(
                json.dumps({"detail": message}), status=503, content_type="application/json"
            )
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response


def workers_alive(timeout: float = 1.0) -> list[str] | None:
    from evalserver.celery import app

    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception:  # the broker is down
        return None
    return sorted(name for reply in replies for name in reply)


class OpsStatus(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        operation_id="ops_status",
        responses=OpenApiResponse(
            description="submissions per status, oldest_waiting_s, queue {name, depth} (the "
            "default), queues [{name, depth}] (every challenge's queue and its -rounds twin), workers, "
            "storage [{challenge, title, submission_bytes, submission_files, "
            "failed_submission_bytes}], challenges [{challenge, title, teams, participants, "
            "submissions, evaluation_time_s}]"
        ),
    )
    def get(self, request):
        """Submissions per status, the oldest waiting one, queue depth and live workers."""
        from challenges.models import Submission

        counts = dict(Submission.objects.values_list("status").annotate(n=Count("pk")).order_by())
        waiting = Submission.objects.filter(
            status__in=[Submission.Status.SUBMITTED, Submission.Status.QUEUED]
        ).aggregate(oldest=Min("submitted_at"))["oldest"]
        from challenges.analytics.overview import challenges_overview
        from challenges.services.queues import queue_depths, queue_names
        from challenges.services.submission_storage import storage_by_challenge

        names = queue_names()
        default = settings.CELERY_TASK_DEFAULT_QUEUE
        depths = queue_depths(list(dict.fromkeys([default, *names])))

        def depth(name: str) -> int | None:
            return None if depths is None else depths[name]

        started = time.monotonic()
        workers = workers_alive()
        return Response(
            {
                "submissions": counts,
                "oldest_waiting_s": (
                    round((timezone.now() - waiting).total_seconds(), 1) if waiting else None
                ),
                "queue": {"name": settings.CELERY_TASK_DEFAULT_QUEUE, "depth": depth(default)},
                # Every queue some challenge's work goes to (challenges.services.queues).
                "queues": [{"name": name, "depth": depth(name)} for name in names],
                "workers": workers,
                "workers_ping_s": round(time.monotonic() - started, 3),
                # Submission files still stored, per challenge (issue 11: disk is finite).
                "storage": storage_by_challenge(),
                # The hosts' analytics in brief, for every challenge (issue 26).
                "challenges": challenges_overview(),
            }
        )

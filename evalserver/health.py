"""Health for load balancers and container healthchecks (`/healthz`), and the queue and
worker status operators look at (`GET /api/v1/ops/status/`, staff only)."""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

HEALTH_PATH = "/healthz"


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

"""Prometheus metrics at /metrics (prometheus_client): HTTP requests counted by a
middleware, and at scrape time from the database and the broker: submissions by status,
evaluation durations, queue depth per queue, the notification outbox.

Requests are counted per web process; run gunicorn with PROMETHEUS_MULTIPROC_DIR set (an
empty folder every worker process can write) to have one count across its processes.
Readable with `Authorization: Bearer <METRICS_TOKEN>` or from METRICS_ALLOWED_ADDRESSES;
with neither configured the page does not exist (404)."""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.db.models import Count, Q
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

METRICS_PATH = "/metrics"
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

REQUESTS = Counter(
    "evalserver_http_requests",
    "HTTP requests served, by method, route name and status class.",
    ["method", "route", "status"],
)


class RequestMetricsMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # The route's name, never the raw path: ids in paths would make a series per row.
        route = (match.view_name if match else "") or "unmatched"
        REQUESTS.labels(request.method, route, f"{response.status_code // 100}xx").inc()
        return response


class DatabaseCollector:
    """Read when scraped, so every web process reports the same numbers."""

    def collect(self):
        from challenges.models import OutboxMessage, Submission
        from challenges.services.queues import queue_depths, queue_names

        statuses = GaugeMetricFamily(
            "evalserver_submissions", "Submissions by status.", labels=["status"]
        )
        counts = dict(Submission.objects.values_list("status").annotate(n=Count("pk")).order_by())
        for status in Submission.Status.values:
            statuses.add_metric([status], counts.get(status, 0))
        yield statuses

        timed = Submission.objects.filter(status__in=Submission.RANKED, wall_time_s__isnull=False)
        sums = timed.aggregate(
            n=Count("pk"),
            **{
                f"le{i}": Count("pk", filter=Q(wall_time_s__lte=b))
                for i, b in enumerate(DURATION_BUCKETS)
            },
        )
        total = sum(timed.values_list("wall_time_s", flat=True)) if sums["n"] else 0.0
        buckets = [(str(b), sums[f"le{i}"]) for i, b in enumerate(DURATION_BUCKETS)]
        buckets.append(("+Inf", sums["n"]))
        histogram = HistogramMetricFamily(
            "evalserver_evaluation_duration_seconds",
            "Wall time of evaluate() of scored submissions.",
        )
        histogram.add_metric([], buckets, total)
        yield histogram

        depths = queue_depths(queue_names())
        queue = GaugeMetricFamily(
            "evalserver_queue_depth", "Messages waiting per Celery queue.", labels=["queue"]
        )
        for name, depth in (depths or {}).items():
            queue.add_metric([name], depth)
        yield queue

        outbox = GaugeMetricFamily(
            "evalserver_outbox_messages", "Notification outbox by status.", labels=["status"]
        )
        rows = dict(OutboxMessage.objects.values_list("status").annotate(n=Count("pk")).order_by())
        for status in OutboxMessage.Status.values:
            outbox.add_metric([status], rows.get(status, 0))
        yield outbox


def _allowed(request) -> bool | None:
    """True: may read; False: may not; None: metrics are off."""
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES
    if not token and not networks:
        return None
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


def metrics_view(request):
    allowed = _allowed(request)
    if allowed is None:
        return HttpResponseNotFound("Not found")
    if not allowed:
        return HttpResponseForbidden("Metrics need a token or an allowed address.")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
        requests_text = generate_latest(processes)
    else:
        requests_text = generate_latest(REGISTRY)
    body = requests_text + generate_latest(registry)
    # The text format every Prometheus server reads (2.x does not know 1.0.0's header).
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)

"""Bounds on what participants store: failed submissions' files go after a retention,
and operators see the space each challenge uses. (The per-team cap is checked where
uploads are accepted: `team_storage_check` in challenges.services.submissions.)"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Count, Q, Sum
from django.utils import timezone

from challenges.models import Challenge, Submission

log = logging.getLogger(__name__)


@dataclass
class PurgeReport:
    files: int = 0
    bytes: int = 0


def submissions_purge_failed_inputs(*, now: dt.datetime | None = None) -> PurgeReport:
    """Remove the input files of submissions that failed more than
    FAILED_SUBMISSION_RETENTION_DAYS ago; their rows (metadata, message, logs) stay and
    record when. Safe to run anywhere, any number of times: each row is claimed with a
    conditional update before its file goes, so two sweepers never both count it."""
    now = now or timezone.now()
    days = settings.FAILED_SUBMISSION_RETENTION_DAYS
    report = PurgeReport()
    if days <= 0:
        return report
    cutoff = now - dt.timedelta(days=days)
    due = Submission.objects.filter(
        status=Submission.Status.FAILED,
        input_purged_at__isnull=True,
        finished_at__lt=cutoff,
    ).values_list("pk", "input_file", "input_size")
    for pk, path, size in due.iterator(chunk_size=500):
        claimed = Submission.objects.filter(
            pk=pk, status=Submission.Status.FAILED, input_purged_at__isnull=True
        ).update(input_purged_at=now)
        if claimed != 1:
            continue  # re-run meanwhile, or another sweeper got it
        if path:
            try:
                default_storage.delete(path)
            except OSError as exc:  # gone already is fine; anything else is logged
                log.warning("could not remove %s of submission %s: %s", path, pk, exc)
        report.files += 1
        report.bytes += size or 0
    if report.files:
        log.info("removed %s failed submission file(s), %s bytes", report.files, report.bytes)
    return report


def storage_by_challenge() -> list[dict]:
    """Bytes of submission files stored per challenge (what the ops status shows)."""
    stored = Q(phases__submissions__input_purged_at__isnull=True)
    rows = (
        Challenge.objects.annotate(
            submission_bytes=Sum("phases__submissions__input_size", filter=stored),
            submission_files=Count("phases__submissions", filter=stored),
            failed_bytes=Sum(
                "phases__submissions__input_size",
                filter=stored & Q(phases__submissions__status=Submission.Status.FAILED),
            ),
        )
        .order_by("pk")
        .values("pk", "title", "submission_bytes", "submission_files", "failed_bytes")
    )
    return [
        {
            "challenge": row["pk"],
            "title": row["title"],
            "submission_bytes": row["submission_bytes"] or 0,
            "submission_files": row["submission_files"],
            "failed_submission_bytes": row["failed_bytes"] or 0,
        }
        for row in rows
    ]

"""Nothing stuck: the sweeper re-sends submissions nobody claimed and fails those whose
worker stopped answering; a worker at its start recovers what its previous instance left."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.models import Submission
from challenges.services.lost_workers import MAX_LOST, lost_work_recover
from challenges.services.submissions.transitions import (
    EVALUATING,
    Status,
    submission_enqueue,
    submission_fail,
    submission_transition,
)

# `Submission.worker` of attempts claimed by a host's machine through EvalAI's queue API.
REMOTE_WORKER_PREFIX = "remote:"


@dataclass
class SweepReport:
    requeued: int = 0
    failed: int = 0


def submissions_sweep(*, now: dt.datetime | None = None) -> SweepReport:
    """Nothing stuck: re-send submissions nobody claimed; fail running ones whose time is up.

    Losing Redis loses queued messages but no submission: they are still `submitted` or
    `queued` here, and get sent again.
    """
    now = now or timezone.now()
    report = SweepReport()
    stale = now - dt.timedelta(seconds=settings.SWEEPER_REQUEUE_AFTER_S)
    waiting = (
        Submission.objects.filter(
            Q(status=Status.SUBMITTED, submitted_at__lt=stale)
            | Q(status=Status.QUEUED, queued_at__lt=stale)
        )
        # Remote evaluation: nothing to re-send, the queue is the table itself.
        .exclude(phase__challenge__remote_evaluation=True)
        .values_list("pk", flat=True)[:1000]
    )
    for submission_id in waiting:
        Submission.objects.filter(pk=submission_id, status=Status.QUEUED).update(queued_at=now)
        submission_enqueue(submission_id=submission_id)
        report.requeued += 1
    # A remote evaluation that outlived its claim is a lost worker: run again once, then
    # failed, as at a worker's restart; its message becomes visible on the queue again.
    remote = submissions_recover_worker(worker_prefix=REMOTE_WORKER_PREFIX, deadline_before=now)
    report.requeued += remote.requeued
    report.failed += remote.failed
    overdue = Submission.objects.filter(status__in=EVALUATING, deadline_at__lt=now).values_list(
        "pk", "worker"
    )
    for submission_id, worker in overdue:
        if submission_fail(
            submission_id=submission_id,
            kind="lost",
            message=_(
                "The worker evaluating this submission (%(value)s) stopped responding; the hosts can re-run it."
            )
            % {"value": worker or "unknown"},
        ):
            report.failed += 1
    return report


def submissions_recover_worker(
    *, worker_prefix: str, max_attempts: int = MAX_LOST, deadline_before: dt.datetime | None = None
) -> SweepReport:
    """At worker start: submissions a previous instance of this worker left running.

    They are run again once (the crash was probably not theirs); a submission whose
    evaluation killed the worker twice fails with that reason (the policy tournament model
    runs share, `challenges.services.lost_workers`). With `deadline_before`, only those
    whose deadline passed (the sweeper, for remote evaluations).
    """
    running = Submission.objects.filter(status__in=EVALUATING, worker__startswith=worker_prefix)
    if deadline_before is not None:
        running = running.filter(deadline_at__lt=deadline_before)

    def fail(row) -> bool:
        return submission_fail(
            submission_id=row[0],
            kind="lost",
            message=_(
                "The worker died while evaluating this submission, twice; it was not retried again."
            ),
            lost_count=F("lost_count") + 1,
        )

    def retry(row) -> bool:
        submission_id = row[0]
        if not submission_transition(
            submission_id=submission_id,
            step="retry_lost",
            to=Status.SUBMITTED,
            attempt=F("attempt") + 1,
            lost_count=F("lost_count") + 1,
            worker="",
            started_at=None,
            deadline_at=None,
        ):
            return False
        transaction.on_commit(lambda: submission_enqueue(submission_id=submission_id))
        return True

    outcome = lost_work_recover(
        running.values_list("pk", "lost_count"), retry=retry, fail=fail, max_lost=max_attempts
    )
    return SweepReport(requeued=outcome.requeued, failed=outcome.failed)

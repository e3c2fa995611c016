"""Nothing lost in a tournament: the sweeper re-sends model runs and scorings nobody took
and the runs of new models still pending, and model runs whose worker died run again once,
then fail (the policy submissions share, `challenges.services.lost_workers`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from challenges.models import RoundSubmission
from challenges.services.lost_workers import lost_work_recover
from challenges.tournaments import core
from challenges.tournaments.core import RUN_TASK, SCORE_TASK, Status, round_submission_transition
from challenges.tournaments.model_runs import model_runs_resend


@dataclass
class TournamentSweep:
    resent: int = 0
    requeued: int = 0
    failed: int = 0
    models_resent: int = 0


def _requeue_or_fail(rows, report: TournamentSweep, now: dt.datetime) -> None:
    def fail(row) -> bool:
        return round_submission_transition(
            submission_id=row[0],
            step="predicted",
            to=Status.FAILED,
            deadline_at=None,
            lost_count=F("lost_count") + 1,
            failure_kind="lost",
            failure_message="The worker running your model died twice; it was not run again.",
        )

    def retry(row) -> bool:
        run_id, _lost, queue = row
        if not round_submission_transition(
            submission_id=run_id,
            step="requeue",
            to=Status.QUEUED,
            attempt=F("attempt") + 1,
            lost_count=F("lost_count") + 1,
            worker="",
            deadline_at=None,
            enqueued_at=now,
        ):
            return False
        transaction.on_commit(lambda: core.send(RUN_TASK, run_id, challenge_queue=queue))
        return True

    outcome = lost_work_recover(
        rows.values_list("pk", "lost_count", "round__phase__challenge__queue"),
        retry=retry,
        fail=fail,
    )
    report.requeued += outcome.requeued
    report.failed += outcome.failed


def round_runs_recover_worker(*, worker_prefix: str) -> TournamentSweep:
    """At a worker's start: model runs a previous instance of it left predicting run again
    (the crash was probably not theirs); twice lost, they fail saying so."""
    report = TournamentSweep()
    rows = RoundSubmission.objects.filter(
        status=Status.PREDICTING, worker__startswith=worker_prefix
    )
    _requeue_or_fail(rows, report, timezone.now())
    return report


def tournaments_sweep(*, now: dt.datetime | None = None) -> TournamentSweep:
    """Nothing lost: re-send model runs and scorings nobody took (their message died with
    the broker), and new models' own runs still pending (model_runs_resend), and run again
    model runs whose worker stopped answering."""
    now = now or timezone.now()
    report = TournamentSweep()
    stale = now - dt.timedelta(seconds=settings.SWEEPER_REQUEUE_AFTER_S)
    waiting = RoundSubmission.objects.filter(
        status__in=[Status.QUEUED, Status.SCORING], enqueued_at__lt=stale
    ).values_list("pk", "status", "targets_version", "round__phase__challenge__queue")[:1000]
    for pk, status, version, queue in waiting:
        RoundSubmission.objects.filter(pk=pk, status=status).update(enqueued_at=now)
        if status == Status.QUEUED:
            core.send(RUN_TASK, pk, challenge_queue=queue)
        else:
            core.send(SCORE_TASK, pk, version, challenge_queue=queue)
        report.resent += 1
    overdue = RoundSubmission.objects.filter(status=Status.PREDICTING, deadline_at__lt=now)
    _requeue_or_fail(overdue, report, now)
    report.models_resent = model_runs_resend(now=now, stale=stale)
    return report

"""What workers report: a model run claimed and its outcome recorded (a failure told to the
team's webhooks), and a round submission's scores against one version of the targets."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from challenges.models import Round, RoundSubmission, Tournament, Webhook, WebhookDelivery
from challenges.services.webhooks import DELIVER_TASK
from challenges.tournaments import core, model_runs
from challenges.tournaments.core import SCORE_TASK, Status, round_submission_transition

log = logging.getLogger(__name__)


def round_run_claim(*, run_id: int, worker: str, time_limit_s: float) -> RoundSubmission | None:
    now = timezone.now()
    grace = dt.timedelta(seconds=settings.SUBMISSION_DEADLINE_GRACE_S)
    if not round_submission_transition(
        submission_id=run_id,
        step="claim",
        to=Status.PREDICTING,
        worker=worker,
        deadline_at=now + dt.timedelta(seconds=time_limit_s) + grace,
    ):
        return None
    return RoundSubmission.objects.select_related("round__phase__challenge", "model", "team").get(
        pk=run_id
    )


@dataclass
class RunRecord:
    ok: bool
    predictions_path: str = ""
    predictions_sha256: str = ""
    rows: int = 0
    failure_kind: str = ""
    failure_message: str = ""
    traceback: str = ""
    stdout: str = ""
    stderr: str = ""
    execution: dict | None = None


def round_run_record(*, run: RoundSubmission, record: RunRecord) -> bool:
    """A model run's outcome, for the attempt this worker holds. Valid predictions wait
    for targets (or are scored at once when the targets came first); a failure is told
    to the team's webhooks."""
    ours = Q(attempt=run.attempt, worker=run.worker)
    fields = {
        "deadline_at": None,
        "stdout": record.stdout,
        "stderr": record.stderr,
        "execution": record.execution or {},
        "failure_kind": record.failure_kind,
        "failure_message": record.failure_message,
        "traceback": record.traceback,
    }
    with transaction.atomic():
        # Locks the round row: a concurrent upload of targets either sees this run as
        # pending (and scores it) or is seen here (and this run goes to scoring).
        opened = Round.objects.select_for_update().get(pk=run.round_id)
        if not record.ok:
            to = Status.FAILED
        elif opened.targets_version:
            to = Status.SCORING
            fields.update(targets_version=opened.targets_version, enqueued_at=timezone.now())
        else:
            to = Status.PENDING
        if record.ok:
            fields.update(
                predictions=record.predictions_path,
                predictions_sha256=record.predictions_sha256,
                rows=record.rows,
            )
        moved = round_submission_transition(
            submission_id=run.pk, step="predicted", to=to, extra=ours, **fields
        )
        if not moved:
            log.info("round run %s attempt %s was taken over; outcome dropped", run.pk, run.attempt)
            return False
        if to == Status.FAILED:
            _tell_team_of_failure(run, opened, record)
            if run.model_id:
                model_runs.model_run_failed(
                    run.model,
                    kind=record.failure_kind,
                    message=record.failure_message,
                    opened=opened,
                )
        elif to == Status.SCORING:
            version = opened.targets_version
            transaction.on_commit(lambda: core.send(SCORE_TASK, run.pk, version))
        if to != Status.FAILED and run.model_id and not _has_validation(opened):
            model_runs.model_round_run_succeeded(run.model_id)
    return True


def _has_validation(opened: Round) -> bool:
    return (
        Tournament.objects.filter(phase_id=opened.phase_id).exclude(validation_features="").exists()
    )


def _tell_team_of_failure(run: RoundSubmission, opened: Round, record: RunRecord) -> None:
    phase = opened.phase
    status, cause = model_runs.failure_cause(record.failure_kind)
    for webhook in Webhook.objects.filter(
        team_id=run.team_id, challenge_id=phase.challenge_id, is_active=True
    ):
        trigger = uuid.uuid4().hex
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            round=opened,
            trigger_id=trigger,
            payload={
                "event": "model_failed",
                "roundNumber": opened.number,
                "dataVersion": opened.data_version,
                "triggerId": trigger,
                "isTest": False,
                "challenge": phase.challenge_id,
                "phase": phase.codename,
                "submission": run.pk,
                "failureKind": record.failure_kind,
                "status": status,
                "failureCause": cause,
                "failureMessage": record.failure_message[:2000],
            },
            next_attempt_at=timezone.now(),
        )
        transaction.on_commit(lambda pk=delivery.pk: current_app.send_task(DELIVER_TASK, args=[pk]))


# ---------------------------------------------------------------- scoring


def round_score_record(
    *,
    submission_id: int,
    targets_version: int,
    scores: dict | None,
    per_era: dict | None,
    failure_message: str = "",
    traceback: str = "",
) -> bool:
    """Scores from the targets of `targets_version`; dropped when newer targets came."""
    ours = Q(targets_version=targets_version)
    if scores is not None:
        return round_submission_transition(
            submission_id=submission_id,
            step="scored",
            to=Status.SCORED,
            extra=ours,
            scores=scores,
            per_era=per_era,
            scored_at=timezone.now(),
        )
    return round_submission_transition(
        submission_id=submission_id,
        step="scored",
        to=Status.FAILED,
        extra=ours,
        failure_kind="scoring",
        failure_message=failure_message[:5000],
        traceback=traceback,
    )

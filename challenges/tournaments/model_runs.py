"""A model's own run at upload (DESIGN section 16): on the open round (a round submission,
counted unless the team's bot submits later) and on the phase's validation data, whose
predictions get diagnostics. The model's status reads as Numerai's does:

    pending -> running -> validating -> success
                      \\-> failed (the model's fault, with its cause) / error (the platform's)

Each step is a conditional update from the statuses it may follow, so a task delivered
twice moves nothing twice."""

from __future__ import annotations

import datetime as dt
import uuid

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.models import Round, RoundSubmission, TournamentModel, Webhook, WebhookDelivery
from challenges.services.queues import rounds_queue
from challenges.services.state_machine import Table, transition
from challenges.services.webhooks import DELIVER_TASK
from challenges.tournaments import core

VALIDATE_TASK = "workers.validate_tournament_model"
DIAGNOSE_TASK = "workers.diagnose_tournament_model"
ModelStatus = TournamentModel.Status
Cause = TournamentModel.Cause

# A run's failure kind (workers.code_runner.KINDS and the sandbox's own) -> the model
# status and cause a participant reads. Only "platform" is the platform's fault.
_CAUSES = {
    "timeout": Cause.TIMEOUT,
    "memory": Cause.OUT_OF_MEMORY,
    "environment": Cause.VERSION_MISMATCH,
    "invalid_output": Cause.INVALID_SUBMISSION,
    "exception": Cause.EXCEPTION,
    "processes": Cause.EXCEPTION,
    "network": Cause.EXCEPTION,
}


def failure_cause(kind: str) -> tuple[str, str]:
    """(status, cause) of a run that failed with `kind`."""
    if kind in _CAUSES:
        return ModelStatus.FAILED, _CAUSES[kind]
    return ModelStatus.ERROR, Cause.PLATFORM


def model_runs_queue(model: TournamentModel, *, now=None) -> RoundSubmission | None:
    """Queue the new model's runs: on the open round (when there is one) and on the
    validation data. Called inside the upload's transaction; sent once it commits."""
    from challenges.tournaments.rounds import round_current

    now = now or timezone.now()
    phase = model.phase
    queue = phase.challenge.queue
    opened = round_current(phase=phase, now=now)
    run = None
    if opened is not None:
        run = RoundSubmission.objects.create(
            round=opened,
            team_id=model.team_id,
            source=core.Source.MODEL,
            model=model,
            created_by=model.uploaded_by,
            submitted_at=now,
            status=core.Status.QUEUED,
            enqueued_at=now,
        )
        transaction.on_commit(lambda: core.send(core.RUN_TASK, run.pk, challenge_queue=queue))
    transaction.on_commit(lambda: _send(VALIDATE_TASK, model.pk, queue))
    return run


def _send(task: str, model_id: int, challenge_queue: str, *args) -> None:
    try:
        current_app.send_task(
            task, args=[model_id, *args], queue=rounds_queue(challenge_queue or "")
        )
    except Exception:  # the broker is down: the model stays pending; the sweeper sends again
        core.log.warning("could not enqueue %s for model %s", task, model_id)


_ANY = tuple(ModelStatus.values)
# A model's run, as a table (challenges.services.state_machine): which step may move a
# model to which status, from which.
MODEL_TRANSITIONS: Table = {
    ("claim", ModelStatus.RUNNING): (ModelStatus.PENDING, ModelStatus.RUNNING),
    # The sweeper sends a pending model's run again (its message may have died with the
    # broker); the status stays, the send is claimed.
    ("resend", ModelStatus.PENDING): (ModelStatus.PENDING,),
    ("fail", ModelStatus.FAILED): (
        ModelStatus.PENDING,
        ModelStatus.RUNNING,
        ModelStatus.VALIDATING,
    ),
    ("fail", ModelStatus.ERROR): (ModelStatus.PENDING, ModelStatus.RUNNING, ModelStatus.VALIDATING),
    ("validated", ModelStatus.VALIDATING): (ModelStatus.RUNNING,),
    ("diagnosed", ModelStatus.SUCCESS): (ModelStatus.VALIDATING,),
    ("round_run_succeeded", ModelStatus.SUCCESS): (ModelStatus.RUNNING,),
    # A bot's own validation predictions are diagnosed whatever the model's last run did.
    ("predictions_uploaded", ModelStatus.VALIDATING): _ANY,
}


def model_status_move(model_id: int, *, step: str, to: str, **fields) -> bool:
    """Move a model's status along MODEL_TRANSITIONS; True when this caller moved it."""
    return transition(
        TournamentModel,
        MODEL_TRANSITIONS,
        pk=model_id,
        step=step,
        to=to,
        status_changed_at=timezone.now(),
        **fields,
    )


def model_run_claim(model_id: int, *, token: str = "") -> bool:
    """From pending, by whichever message of the run comes first (the upload's, token "",
    or one the sweeper sent again), which the model then names; or running again, by that
    same message only: the task is acknowledged late, so a worker killed mid-run has it
    delivered again and the run starts over, while the run's other message (the upload's
    was only slow, not lost) finds it taken and does nothing."""
    return model_status_move(
        model_id,
        step="claim",
        to=ModelStatus.RUNNING,
        extra=Q(status=ModelStatus.PENDING) | Q(status=ModelStatus.RUNNING, run_token=token),
        run_token=token,
    )


def model_runs_resend(*, now: dt.datetime, stale: dt.datetime, limit: int = 1000) -> int:
    """Send again the runs of models still pending since before `stale`: their message
    died with the broker (or never left: `_send` found it down). Each send is claimed by a
    conditional update of the model's enqueued_at, so two sweepers send it once; its new
    token lets only the first message of the run to arrive start it (model_run_claim).
    Returns how many were sent."""
    waiting = (
        TournamentModel.objects.annotate(since=Coalesce("enqueued_at", "uploaded_at"))
        .filter(status=ModelStatus.PENDING, since__lt=stale)
        .values_list("pk", "enqueued_at", "phase__challenge__queue")[:limit]
    )
    sent = 0
    for pk, enqueued_at, queue in waiting:
        if not transition(
            TournamentModel,
            MODEL_TRANSITIONS,
            pk=pk,
            step="resend",
            to=ModelStatus.PENDING,
            extra=Q(enqueued_at=enqueued_at) if enqueued_at else Q(enqueued_at__isnull=True),
            enqueued_at=now,
        ):
            continue  # claimed meanwhile, or sent again by another sweeper
        _send(VALIDATE_TASK, pk, queue, uuid.uuid4().hex)
        sent += 1
    return sent


def model_run_failed(
    model: TournamentModel, *, kind: str, message: str, opened: Round | None = None
) -> bool:
    """The model's run failed: failed (its cause) or error; its team's webhooks hear of it
    (`model_failed` with the cause) unless the failure came from a round run, which tells
    them itself."""
    status, cause = failure_cause(kind)
    moved = model_status_move(
        model.pk,
        step="fail",
        to=status,
        failure_cause=cause,
        failure_message=message[:5000],
    )
    if moved and opened is None:
        _tell_team(model, status=status, cause=cause, message=message)
    return moved


def model_validated(model_id: int, *, predictions_path: str) -> bool:
    return model_status_move(
        model_id,
        step="validated",
        to=ModelStatus.VALIDATING,
        validation_predictions=predictions_path,
    )


def model_diagnostics_record(model_id: int, *, diagnostics: dict) -> bool:
    return model_status_move(
        model_id,
        step="diagnosed",
        to=ModelStatus.SUCCESS,
        diagnostics=diagnostics,
        failure_cause="",
        failure_message="",
    )


def model_round_run_succeeded(model_id: int) -> None:
    """A phase without validation data: the model's first good run is its success."""
    model_status_move(model_id, step="round_run_succeeded", to=ModelStatus.SUCCESS)


def _tell_team(model: TournamentModel, *, status: str, cause: str, message: str) -> None:
    phase = model.phase
    for webhook in Webhook.objects.filter(
        team_id=model.team_id, challenge_id=phase.challenge_id, is_active=True
    ):
        trigger = uuid.uuid4().hex
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            trigger_id=trigger,
            payload={
                "event": "model_failed",
                "triggerId": trigger,
                "isTest": False,
                "challenge": phase.challenge_id,
                "phase": phase.codename,
                "model": model.pk,
                "status": status,
                "failureCause": cause,
                "failureMessage": message[:2000],
            },
            next_attempt_at=timezone.now(),
        )
        transaction.on_commit(lambda pk=delivery.pk: current_app.send_task(DELIVER_TASK, args=[pk]))


def model_diagnostics_upload(*, user, model: TournamentModel, upload) -> TournamentModel:
    """A bot's validation predictions for one of its team's models (Numerai's diagnostics
    upload): they replace the model's own and are diagnosed again."""
    from challenges.access import require_team_member
    from challenges.services.storage import store_stream

    require_team_member(user, model.team, _("Only members of the team can upload diagnostics."))
    tournament = core.tournament_of(model.phase)
    if not tournament.validation_features:
        raise core.TournamentRefused(
            _("This tournament has no validation data to diagnose predictions on."), field="file"
        )
    if not getattr(upload, "size", 0):
        raise core.TournamentRefused(_("The predictions file is empty."), field="file")
    folder = f"validation-predictions/{model.phase.challenge_id}/{model.phase_id}/{model.team_id}"
    path, _sha, _size = store_stream(folder=folder, name="uploaded.csv", stream=upload)
    model_status_move(
        model.pk,
        step="predictions_uploaded",
        to=ModelStatus.VALIDATING,
        validation_predictions=path,
        diagnostics=None,
        failure_cause="",
        failure_message="",
    )
    queue = model.phase.challenge.queue
    transaction.on_commit(lambda: _send(DIAGNOSE_TASK, model.pk, queue))
    model.refresh_from_db()
    return model


# The diagnostics' headline figures, in the order the page and the API show them.
SUMMARY_KEYS = (
    "rows",
    "eras",
    "features",
    "corr_mean",
    "corr_std",
    "corr_sharpe",
    "max_drawdown",
    "feature_exposure_max",
    "feature_exposure_mean",
    "example_corr_mean",
    "fnc_mean",
    "fnc_refused",
    "peak_mib",
)
DIAGNOSTICS_CSV_COLUMNS = ("era", "rows", "corr", "cumulative_corr", "feature_exposure")


def model_diagnostics_rows(model: TournamentModel) -> list[dict]:
    """The per-era series with the cumulative correlation, for the page, API and CSV."""
    rows, total = [], 0.0
    for item in (model.diagnostics or {}).get("per_era", []):
        total += item.get("corr") or 0.0
        rows.append({**item, "cumulative_corr": total})
    return rows

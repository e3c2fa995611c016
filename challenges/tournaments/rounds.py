"""Live tournaments (DESIGN section 10): opening rounds, teams' models, bots' round
submissions, model runs, scoring when targets arrive.

Round submissions move through a table of allowed transitions (TRANSITIONS), each one a
conditional update that must change exactly one row: a worker, the sweeper or a new
upload of targets may have got there first, and then the caller does nothing.

    queued -> predicting -> pending -> scoring -> scored
                         \\-> failed             \\-> failed (scoring)
    (file uploads start as pending; new targets move pending/scored/failed-at-scoring
     back to scoring)

Model runs and scoring go to their own Celery queue (`<challenge queue>-rounds`), which every
worker consumes next to the default one; Redis hands out the two queues in turn, so a
round of 200 models does not starve ordinary submissions.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import IO

from celery import current_app
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from challenges.access import (
    NOT_TAKING_PART,
    AccessDenied,  # noqa: F401  (what the require_* calls raise; callers catch it from here)
    require_challenge_host,
    require_not_banned,
    require_participation,
    require_team_member,
)
from challenges.models import (
    ChallengeParticipation,
    ChallengePhase,
    ParticipantTeam,
    Round,
    RoundSubmission,
    Tournament,
    TournamentModel,
    Webhook,
    WebhookDelivery,
)
from challenges.services import state_machine
from challenges.services.queues import rounds_queue
from challenges.services.storage import delete_quietly, open_stored, store_stream
from challenges.services.submissions import SubmissionRefused, max_upload_bytes
from challenges.services.webhooks import DELIVER_TASK, round_notify_teams
from challenges.tournament_predictions import (
    InvalidRoundPredictions,
    check_round_predictions,
    live_feature_ids,
)

log = logging.getLogger(__name__)

RUN_TASK = "workers.run_round_model"
SCORE_TASK = "workers.score_round_submission"
Status = RoundSubmission.Status
Source = RoundSubmission.Source
MODEL_SUFFIXES = (".pkl", ".pickle", ".cloudpickle", ".joblib")
# A model run whose worker died this many times fails instead of running again.
MAX_LOST = 2

# The state machine: which statuses each step may start from.
TRANSITIONS: state_machine.Table = {
    ("claim", Status.PREDICTING): (Status.QUEUED,),
    ("predicted", Status.PENDING): (Status.PREDICTING,),
    ("predicted", Status.SCORING): (Status.PREDICTING,),
    ("predicted", Status.FAILED): (Status.PREDICTING,),
    ("requeue", Status.QUEUED): (Status.PREDICTING,),
    ("scored", Status.SCORED): (Status.SCORING,),
    ("scored", Status.FAILED): (Status.SCORING,),
    # New targets: valid predictions and scoring failures are scored (again).
    ("rescore", Status.SCORING): (Status.PENDING, Status.SCORING, Status.SCORED, Status.FAILED),
}
# Predictions in these states are valid; the newest of a team's counts for the round.
VALID = (Status.PENDING, Status.SCORING, Status.SCORED)


class TournamentRefused(SubmissionRefused):
    """A round or model operation is not possible now; the message says why."""


class RoundClosed(TournamentRefused):
    status_code = 409

    def __init__(self, message: str, *, closes_at: dt.datetime):
        super().__init__(message, field="round")
        self.closes_at = closes_at


def round_submission_transition(
    *, submission_id: int, step: str, to: str, extra: Q | None = None, **fields
) -> bool:
    """Move one round submission along TRANSITIONS; True when this caller moved it."""
    return state_machine.transition(
        RoundSubmission, TRANSITIONS, pk=submission_id, step=step, to=to, extra=extra, **fields
    )


def tournament_of(phase: ChallengePhase) -> Tournament:
    tournament = Tournament.objects.filter(phase=phase).first()
    if tournament is None:
        raise TournamentRefused(f"Phase {phase.codename!r} is not a tournament phase.")
    return tournament


def _send(task: str, *args, challenge_queue: str | None = None) -> None:
    """`args[0]` is the round submission; its challenge's queue (`challenge_queue`, read
    when not given: callers sending many of one challenge give it) names the queue."""
    try:
        if challenge_queue is None:
            challenge_queue = (
                RoundSubmission.objects.filter(pk=args[0])
                .values_list("round__phase__challenge__queue", flat=True)
                .first()
            )
        current_app.send_task(task, args=list(args), queue=rounds_queue(challenge_queue or ""))
    except Exception as exc:  # the broker is down: the sweeper sends it again
        log.warning("could not enqueue %s%s: %s", task, args, exc)


# ---------------------------------------------------------------- rounds


def round_open(
    *,
    user,
    phase: ChallengePhase,
    live_features: IO[bytes],
    data_version: str = "",
    closes_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Round:
    """Open the phase's next round on new live features: tell every team's webhooks and
    queue one model run per team that has a model in the phase. `user` None: the beat
    schedule opening rounds from a folder."""
    if user is not None:
        require_challenge_host(user, phase.challenge, "open a round")
    tournament = tournament_of(phase)
    if not phase.challenge.approved_by_admin:
        # Opening runs participants' models and, later, the host's unreviewed script.
        raise TournamentRefused(
            "This challenge is not approved yet; rounds open once an admin approves it."
        )
    now = now or timezone.now()
    closes_at = closes_at or now + dt.timedelta(hours=tournament.round_hours)
    if closes_at <= now:
        raise TournamentRefused("The round's close time must be in the future.")
    try:
        ids = live_feature_ids(live_features)
        live_features.seek(0)
    except (InvalidRoundPredictions, UnicodeDecodeError) as exc:
        raise TournamentRefused(f"The live features are not a readable CSV file: {exc}") from None
    if not ids:
        raise TournamentRefused("The live features file has no rows.")
    folder = f"rounds/{phase.challenge_id}/{phase.pk}/{uuid.uuid4().hex[:12]}"
    path, sha, _size = store_stream(folder=folder, name="live_features.csv", stream=live_features)
    try:
        with transaction.atomic():
            # One new number at a time per phase.
            ChallengePhase.objects.select_for_update().filter(pk=phase.pk).first()
            still_open = phase.rounds.filter(closes_at__gt=now).order_by("-number").first()
            if still_open is not None:
                raise TournamentRefused(
                    f"Round {still_open.number} is open until "
                    f"{still_open.closes_at:%Y-%m-%d %H:%M:%S} UTC; open the next one after it closes."
                )
            number = (phase.rounds.aggregate(n=Max("number"))["n"] or 0) + 1
            opened = Round.objects.create(
                phase=phase,
                number=number,
                data_version=(data_version or str(number))[:100],
                opened_at=now,
                opened_by=user,
                closes_at=closes_at,
                live_features=path,
                live_features_sha256=sha,
            )
            round_notify_teams(opened=opened)
            runs = _queue_model_runs(opened, now)
    except BaseException:
        delete_quietly([path])
        raise
    log.info("round %s of phase %s opened: %s model runs", number, phase.pk, runs)
    return opened


def _queue_model_runs(opened: Round, now: dt.datetime) -> int:
    phase = opened.phase
    # A banned team's model does not run: it would not be ranked.
    teams = ChallengeParticipation.objects.filter(
        challenge_id=phase.challenge_id, is_banned=False
    ).values("team_id")
    latest: dict[int, TournamentModel] = {}
    # Newest first: the first seen per team is its latest; a marked one wins.
    for model in TournamentModel.objects.filter(phase=phase, team_id__in=teams):
        if model.team_id not in latest or (
            model.is_current and not latest[model.team_id].is_current
        ):
            latest[model.team_id] = model
    runs = RoundSubmission.objects.bulk_create(
        [
            RoundSubmission(
                round=opened,
                team_id=team_id,
                source=Source.MODEL,
                model=model,
                submitted_at=now,
                status=Status.QUEUED,
                enqueued_at=now,
            )
            for team_id, model in latest.items()
        ]
    )
    ids = [run.pk for run in runs]
    queue = phase.challenge.queue
    transaction.on_commit(lambda: [_send(RUN_TASK, pk, challenge_queue=queue) for pk in ids])
    return len(ids)


def round_current(*, phase: ChallengePhase, now: dt.datetime | None = None) -> Round | None:
    """The open round: opened, not yet closed."""
    now = now or timezone.now()
    return (
        phase.rounds.filter(opened_at__lte=now, closes_at__gt=now)
        .exclude(live_features="")
        .order_by("-number")
        .first()
    )


def round_targets_upload(
    *, user, round: Round, targets: IO[bytes], now: dt.datetime | None = None
) -> int:
    """The round's targets arrive (again): every valid submission of the round is scored
    against them. Returns how many were queued for scoring."""
    if user is not None:
        require_challenge_host(user, round.phase.challenge, "upload a round's targets")
    tournament_of(round.phase)
    now = now or timezone.now()
    if round.closes_at and now < round.closes_at:
        raise TournamentRefused(
            f"Round {round.number} is open until {round.closes_at:%Y-%m-%d %H:%M:%S} UTC; "
            "upload its targets after it closes."
        )
    folder = f"rounds/{round.phase.challenge_id}/{round.phase_id}/{uuid.uuid4().hex[:12]}"
    path, sha, _size = store_stream(folder=folder, name="targets.csv", stream=targets)
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round.pk)
        old = locked.targets.name
        version = locked.targets_version + 1
        Round.objects.filter(pk=round.pk).update(
            targets=path, targets_sha256=sha, targets_version=version, resolved_at=now
        )
        # Stale scores (older targets) and scoring failures are scored again; a model run
        # still predicting goes to scoring when it ends (round_run_record).
        rescore = RoundSubmission.objects.filter(round=round).filter(
            Q(status__in=VALID) | Q(status=Status.FAILED, failure_kind="scoring")
        )
        ids = list(rescore.values_list("pk", flat=True))
        state_machine.transition_many(
            RoundSubmission,
            TRANSITIONS,
            pks=ids,
            step="rescore",
            to=Status.SCORING,
            targets_version=version,
            enqueued_at=now,
            failure_kind="",
            failure_message="",
        )
        queue = round.phase.challenge.queue
        transaction.on_commit(
            lambda: [_send(SCORE_TASK, pk, version, challenge_queue=queue) for pk in ids]
        )
    if old:
        transaction.on_commit(lambda: delete_quietly([old]))
    round.refresh_from_db()
    return len(ids)


# ---------------------------------------------------------------- models


def tournament_model_upload(
    *,
    user,
    phase: ChallengePhase,
    participation: ChallengeParticipation | None,
    upload: UploadedFile,
    make_current: bool = False,
) -> TournamentModel:
    """A team's new model; it runs from the next round on."""
    tournament_of(phase)
    require_participation(participation, NOT_TAKING_PART)
    if not phase.challenge.approved_by_admin:
        raise TournamentRefused("This challenge is not approved yet.")
    name = upload.name or "model.pkl"
    if not name.lower().endswith(MODEL_SUFFIXES):
        raise TournamentRefused(
            f"A model is a pickled file ({', '.join(MODEL_SUFFIXES)}); {name!r} is not.",
            field="file",
        )
    if not upload.size:
        raise TournamentRefused("The model file is empty.", field="file")
    team_id = participation.team_id
    folder = f"tournament-models/{phase.challenge_id}/{phase.pk}/{team_id}"
    path, sha, size = store_stream(folder=folder, name=name, stream=upload)
    try:
        with transaction.atomic():
            if make_current:
                TournamentModel.objects.filter(phase=phase, team_id=team_id).update(
                    is_current=False
                )
            model = TournamentModel.objects.create(
                phase=phase,
                team_id=team_id,
                uploaded_by=user,
                file=path,
                file_name=name[:255],
                sha256=sha,
                size=size,
                is_current=make_current,
            )
    except BaseException:
        delete_quietly([path])
        raise
    return model


def tournament_model_mark_current(*, user, model: TournamentModel) -> TournamentModel:
    require_team_member(user, model.team, "Only members of the team can choose its current model.")
    with transaction.atomic():
        TournamentModel.objects.filter(phase_id=model.phase_id, team_id=model.team_id).update(
            is_current=False
        )
        TournamentModel.objects.filter(pk=model.pk).update(is_current=True)
    model.is_current = True
    return model


# ---------------------------------------------------------------- bots' submissions


def round_submission_create(
    *,
    user,
    round: Round,
    participation: ChallengeParticipation | None,
    upload: UploadedFile,
    now: dt.datetime | None = None,
) -> RoundSubmission:
    """A bot's predictions for a round, checked at once; refused (409) after the close."""
    now = now or timezone.now()
    require_participation(participation, NOT_TAKING_PART)
    tournament_of(round.phase)
    require_not_banned(participation)
    if round.closes_at is None or now >= round.closes_at:
        closed = round.closes_at or round.opened_at
        raise RoundClosed(
            f"Round {round.number} closed at {closed:%Y-%m-%d %H:%M:%S} UTC; "
            "submit to the current round instead.",
            closes_at=closed,
        )
    if now < round.opened_at:
        raise TournamentRefused(f"Round {round.number} has not opened yet.")
    limit = max_upload_bytes(round.phase)
    if upload.size is not None and upload.size > limit:
        raise TournamentRefused(
            f"The file is {upload.size} bytes; this phase accepts at most {limit}.", field="file"
        )
    _check_upload_count(round, participation.team_id)
    with open_stored(round.live_features.name) as features:
        ids = live_feature_ids(features)
    try:
        upload.seek(0)
        rows = check_round_predictions(upload, ids=ids)
        upload.seek(0)
    except InvalidRoundPredictions as exc:
        raise TournamentRefused(str(exc), field="file") from None
    folder = f"round-predictions/{round.phase.challenge_id}/{round.pk}/{participation.team_id}"
    path, sha, _size = store_stream(folder=folder, name="predictions.csv", stream=upload)
    try:
        with transaction.atomic():
            # The row lock serialises a team's concurrent uploads: the count and the insert
            # cannot interleave with another request's (as for submission quotas).
            ChallengeParticipation.objects.select_for_update().get(pk=participation.pk)
            _check_upload_count(round, participation.team_id)
            return RoundSubmission.objects.create(
                round=round,
                team_id=participation.team_id,
                source=Source.FILE,
                created_by=user,
                submitted_at=now,
                status=Status.PENDING,
                predictions=path,
                predictions_sha256=sha,
                rows=rows,
            )
    except BaseException:
        delete_quietly([path])
        raise


def _check_upload_count(round: Round, team_id: int) -> None:
    uploads = RoundSubmission.objects.filter(round=round, team_id=team_id, source=Source.FILE)
    if uploads.count() >= settings.TOURNAMENT_MAX_UPLOADS_PER_ROUND:
        # Every upload is kept (and scored): a runaway bot must not fill the storage.
        raise TournamentRefused(
            f"Your team has uploaded {settings.TOURNAMENT_MAX_UPLOADS_PER_ROUND} prediction "
            f"files to round {round.number}, the most allowed; the last one counts.",
            field="file",
        )


# ---------------------------------------------------------------- model runs (workers)


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
        elif to == Status.SCORING:
            version = opened.targets_version
            transaction.on_commit(lambda: _send(SCORE_TASK, run.pk, version))
    return True


def _tell_team_of_failure(run: RoundSubmission, opened: Round, record: RunRecord) -> None:
    phase = opened.phase
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
                "failureMessage": record.failure_message[:2000],
            },
            next_attempt_at=timezone.now(),
        )
        transaction.on_commit(lambda pk=delivery.pk: current_app.send_task(DELIVER_TASK, args=[pk]))


# ---------------------------------------------------------------- scoring (workers)


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


# ---------------------------------------------------------------- recovery


@dataclass
class TournamentSweep:
    resent: int = 0
    requeued: int = 0
    failed: int = 0


def _requeue_or_fail(rows, report: TournamentSweep, now: dt.datetime) -> None:
    for run_id, lost, queue in rows.values_list(
        "pk", "lost_count", "round__phase__challenge__queue"
    ):
        if lost + 1 >= MAX_LOST:
            if round_submission_transition(
                submission_id=run_id,
                step="predicted",
                to=Status.FAILED,
                deadline_at=None,
                lost_count=F("lost_count") + 1,
                failure_kind="lost",
                failure_message="The worker running your model died twice; it was not run again.",
            ):
                report.failed += 1
            continue
        if round_submission_transition(
            submission_id=run_id,
            step="requeue",
            to=Status.QUEUED,
            attempt=F("attempt") + 1,
            lost_count=F("lost_count") + 1,
            worker="",
            deadline_at=None,
            enqueued_at=now,
        ):
            transaction.on_commit(
                lambda pk=run_id, queue=queue: _send(RUN_TASK, pk, challenge_queue=queue)
            )
            report.requeued += 1


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
    the broker), and run again model runs whose worker stopped answering."""
    now = now or timezone.now()
    report = TournamentSweep()
    stale = now - dt.timedelta(seconds=settings.SWEEPER_REQUEUE_AFTER_S)
    waiting = RoundSubmission.objects.filter(
        status__in=[Status.QUEUED, Status.SCORING], enqueued_at__lt=stale
    ).values_list("pk", "status", "targets_version", "round__phase__challenge__queue")[:1000]
    for pk, status, version, queue in waiting:
        RoundSubmission.objects.filter(pk=pk, status=status).update(enqueued_at=now)
        if status == Status.QUEUED:
            _send(RUN_TASK, pk, challenge_queue=queue)
        else:
            _send(SCORE_TASK, pk, version, challenge_queue=queue)
        report.resent += 1
    overdue = RoundSubmission.objects.filter(status=Status.PREDICTING, deadline_at__lt=now)
    _requeue_or_fail(overdue, report, now)
    return report


def team_round_submissions(*, phase: ChallengePhase, team: ParticipantTeam):
    """A team's round submissions in a phase, newest first (its page and API)."""
    return (
        RoundSubmission.objects.filter(round__phase=phase, team=team)
        .select_related("round")
        .order_by("-round__number", "-submitted_at", "-pk")
    )

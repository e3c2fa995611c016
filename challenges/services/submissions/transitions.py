"""The submission state machine: one table of allowed transitions (TRANSITIONS), named
groups of statuses, and one function that performs a transition
(`submission_transition`, a conditional update that must change exactly one row).
Every writer of `Submission.status` goes through it.

    submitted -> queued -> running ---------------------> finished | partially_evaluated | failed
                      \\-> predicting -> validating -> running
    any not ended -> cancelled;  ended -> submitted (re-run);  evaluating -> submitted
    (its worker died: run again once)

Another worker, the sweeper or a cancel may have got there first; then the update
matches no row and the caller must do nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from challenges.models import Challenge, ChallengePhaseSplit, Submission, SubmissionResult
from challenges.models.notifications import Kind
from challenges.notifications.events import event_record
from challenges.notifications.fanout import fan_out_after_commit
from challenges.prepared import Prepared, insert_rows
from challenges.services import state_machine
from challenges.services.leaderboard_refresh import leaderboard_refresh
from challenges.services.queues import evaluation_queue

log = logging.getLogger(__name__)

EVALUATE_TASK = "workers.evaluate_submission"
Status = Submission.Status

# Named groups of statuses (kept on the model, next to the statuses).
WAITING = Submission.WAITING
EVALUATING = Submission.EVALUATING
IN_FLIGHT = Submission.IN_FLIGHT  # WAITING and EVALUATING
ENDED = Submission.FINAL
RANKED = Submission.RANKED

# (step, to) -> the statuses the step may start from.
TRANSITIONS: state_machine.Table = {
    ("enqueue", Status.QUEUED): (Status.SUBMITTED,),
    ("claim", Status.RUNNING): WAITING,
    ("claim", Status.PREDICTING): WAITING,  # a code submission's model runs first
    ("advance", Status.VALIDATING): (Status.PREDICTING,),
    ("advance", Status.RUNNING): (Status.VALIDATING,),
    ("record", Status.FINISHED): EVALUATING,
    ("record", Status.PARTIALLY_EVALUATED): EVALUATING,
    ("record", Status.FAILED): EVALUATING,
    ("fail", Status.FAILED): EVALUATING,
    ("cancel", Status.CANCELLED): IN_FLIGHT,
    ("rerun", Status.SUBMITTED): ENDED,
    ("retry_lost", Status.SUBMITTED): EVALUATING,
}


def submission_transition(
    *,
    submission_id: int,
    step: str,
    to: str,
    from_statuses: tuple[str, ...] | None = None,
    extra: Q | None = None,
    **fields: Any,
) -> bool:
    """Move one submission along TRANSITIONS, writing `fields` with it; True when this
    caller moved it. `from_statuses` narrows the table's starting statuses; `extra`
    narrows the row (the attempt and worker that hold it)."""
    return state_machine.transition(
        Submission,
        TRANSITIONS,
        pk=submission_id,
        step=step,
        to=to,
        from_statuses=from_statuses,
        extra=extra,
        **fields,
    )


def _held_by(submission: Submission) -> Q:
    """The attempt this worker holds: after a cancel, a sweep or a re-run, no longer."""
    return Q(attempt=submission.attempt, worker=submission.worker)


# ---------------------------------------------------------------- queueing


def submission_enqueue(*, submission_id: int, challenge: Challenge | None = None) -> bool:
    """Mark a submission queued and hand its id to the broker. Safe to call again.

    When the broker is unreachable the submission stays queued; the sweeper sends it again.
    `challenge`: the submission's, when the caller has it (whether the hosts' machine
    evaluates it, and its queue); else they are read.
    """
    from celery import current_app

    now = timezone.now()
    counted = F("enqueue_count") + 1
    if not submission_transition(
        submission_id=submission_id,
        step="enqueue",
        to=Status.QUEUED,
        queued_at=now,
        enqueue_count=counted,
    ):
        Submission.objects.filter(pk=submission_id).update(enqueue_count=counted)
    if challenge is not None:
        remote, queue = challenge.remote_evaluation, challenge.queue
    else:
        remote, queue = Submission.objects.filter(pk=submission_id).values_list(
            "phase__challenge__remote_evaluation", "phase__challenge__queue"
        ).first() or (False, "")
    if remote:
        # The hosts' own machine evaluates it: it waits, queued, until their worker polls
        # the challenge's queue (challenges.services.remote_evaluation).
        return True
    try:
        current_app.send_task(
            EVALUATE_TASK,
            args=[submission_id],
            # The challenge's own queue, if an admin gave it one (challenges.services.queues).
            queue=evaluation_queue(queue),
            # Redis and the on-disk broker route the default exchange by the queue's name:
            # the message reaches the queue without a declaration, which would copy and bind
            # the queue's entities on every publish only to find it declared (a quarter of
            # the publish's CPU). Another broker (AMQP) drops a message for a queue nobody
            # declared yet: declared there, as Celery does by default.
            declare=[] if _routes_by_queue_name(current_app.conf.broker_url) else None,
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.5,
                "interval_max": 1,
            },
        )
    except Exception as exc:  # the broker is down: the sweeper will retry
        log.warning("could not enqueue submission %s: %s", submission_id, exc)
        return False
    return True


def _routes_by_queue_name(broker_url: str | None) -> bool:
    return (broker_url or "").startswith(("redis://", "rediss://", "filesystem://"))


def submission_claim(
    *,
    submission_id: int,
    worker: str,
    time_limit_s: float,
    status: str = Status.RUNNING,
    loaded: Submission | None = None,
) -> Submission | None:
    """Move a queued submission to running (code submissions: predicting) for `worker`.
    None if someone else has it.

    `loaded`: the submission as the caller read it (with its phase and team)
    just before; the claim then also requires its attempt, so a re-run in between makes
    this claim fail rather than run a stale attempt, and the row is not read again.
    """
    now = timezone.now()
    grace = dt.timedelta(seconds=settings.SUBMISSION_DEADLINE_GRACE_S)
    changes = {
        "started_at": now,
        "finished_at": None,
        "worker": worker,
        "deadline_at": now + dt.timedelta(seconds=time_limit_s) + grace,
    }
    claimed = submission_transition(
        submission_id=submission_id,
        step="claim",
        to=status,
        extra=None if loaded is None else Q(attempt=loaded.attempt),
        **changes,
    )
    if (
        not claimed
        and not Submission.objects.filter(pk=submission_id, status=status, worker=worker).exists()
    ):
        # (The second check: a retry after the reply to our first try was lost, when the
        # database restarted mid-commit. The first try may have landed; `worker` carries
        # a nonce per claim, so a row with it is ours and no one else's.)
        return None
    if loaded is None:
        return Submission.objects.select_related("phase__challenge", "team").get(pk=submission_id)
    for field, value in {"status": status, **changes}.items():
        setattr(loaded, field, value)
    return loaded


def submission_advance(*, submission: Submission, from_status: str, to_status: str) -> bool:
    """A code submission's next step (predicting -> validating -> running), for the attempt
    this worker holds. False when a cancel, a sweep or a re-run got there first: stop."""
    moved = submission_transition(
        submission_id=submission.pk,
        step="advance",
        to=to_status,
        from_statuses=(from_status,),
        extra=_held_by(submission),
    )
    if moved:
        submission.status = to_status
    return moved


@dataclass
class EvaluationRecord:
    """What a worker reports about one attempt."""

    ok: bool
    scores: dict[str, dict[str, float]]
    missing_splits: list[str]
    failure_kind: str = ""
    failure_message: str = ""
    traceback: str = ""
    stdout: str = ""
    stderr: str = ""
    submission_result: Any = None
    submission_metadata: Any = None
    wall_time_s: float | None = None
    execution: dict[str, Any] | None = None
    script_id: int | None = None
    annotation_sha256: str = ""
    hidden_splits: list[str] = dataclasses.field(default_factory=list)


def submission_record_outcome(
    *,
    submission: Submission,
    record: EvaluationRecord,
    from_status: str = Status.RUNNING,
    splits: dict[str, ChallengePhaseSplit] | None = None,
    fan_out_here: bool = False,
) -> bool:
    """Write an attempt's outcome and its results in one transaction.

    Only the attempt that is still running under this worker may finish it: after a
    cancel, a sweep or a re-run, the update matches no row and nothing is written. A code
    submission whose model failed ends from `predicting` or `validating`. `splits`: the
    phase's splits by codename, with their dataset split and leaderboard, when the caller
    has them already (the worker read them for evaluate()). `fan_out_here`: the caller is
    a worker's task, which tells the team itself after the commit (`event_record`).
    """
    now = timezone.now()
    if record.ok:
        status = Status.PARTIALLY_EVALUATED if record.missing_splits else Status.FINISHED
    else:
        status = Status.FAILED
    with transaction.atomic():
        updated = submission_transition(
            submission_id=submission.pk,
            step="record",
            to=status,
            from_statuses=(from_status,),
            extra=_held_by(submission),
            finished_at=now,
            deadline_at=None,
            failure_kind=record.failure_kind,
            failure_message=record.failure_message,
            traceback=record.traceback,
            stdout=record.stdout,
            stderr=record.stderr,
            submission_result=_json_safe(record.submission_result),
            submission_metadata=_json_safe(record.submission_metadata),
            wall_time_s=record.wall_time_s,
            execution=record.execution or {},
            script_id=record.script_id,
            annotation_sha256=record.annotation_sha256,
        )
        if not updated:
            log.info(
                "submission %s attempt %s was taken over; outcome dropped",
                submission.pk,
                submission.attempt,
            )
            return False
        written = 0
        if record.ok:
            if splits is None:
                splits = phase_splits_by_codename(submission.phase_id)
            if submission.attempt > 1:
                # (A re-run deactivated the earlier attempt's results already; a first
                # attempt has none. Kept for re-runs as a guard: one active set, always.)
                SubmissionResult.objects.filter(submission=submission, is_active=True).update(
                    is_active=False
                )
            results = [
                SubmissionResult(
                    submission=submission,
                    phase_split=splits[codename],
                    attempt=submission.attempt,
                    scores=scores,
                    shown_to_participant=codename not in record.hidden_splits,
                    created_at=now,
                )
                for codename, scores in record.scores.items()
            ]
            insert_rows(SubmissionResult, results)
            # The team's standing changes with the result, in the same transaction: a
            # reader never sees a result without its leaderboard entry, or the reverse.
            written = leaderboard_refresh(
                phase=submission.phase,
                recorded=submission,
                scores_by_split={
                    splits[codename].pk: scores for codename, scores in record.scores.items()
                },
                splits=splits.values(),
            )
        # The team hears of it (site, email) from the outbox, written with the outcome. A
        # result that wrote no leaderboard entry changed no board: the fan-out need not
        # look for a new leader (challenges.notifications.leaders).
        _record_final(
            submission.pk,
            submission.phase_id,
            status,
            fan_out_here=fan_out_here,
            board_changed=bool(written),
        )
    return True


def phase_splits_by_codename(phase_id: int) -> dict[str, ChallengePhaseSplit]:
    """A phase's splits by their dataset split's codename, with dataset split and
    leaderboard: what results are recorded against."""
    return {ps.dataset_split.codename: ps for ps in _PHASE_SPLITS(phase_id)}


# Read for every recorded result (challenges.prepared: compiled once per process).
_PHASE_SPLITS = Prepared(
    lambda phase_id: ChallengePhaseSplit.objects.filter(phase_id=phase_id).select_related(
        "dataset_split", "leaderboard"
    ),
    int,
)


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str).replace("NaN", "null"))


def submission_fail(
    *,
    submission_id: int,
    kind: str,
    message: str,
    from_statuses: tuple[str, ...] = EVALUATING,
    **fields: Any,
) -> bool:
    """Fail a submission that is still being evaluated (sweeper, platform errors, a
    worker that died with it)."""
    with transaction.atomic():
        failed = submission_transition(
            submission_id=submission_id,
            step="fail",
            to=Status.FAILED,
            from_statuses=from_statuses,
            finished_at=timezone.now(),
            deadline_at=None,
            failure_kind=kind,
            failure_message=message,
            **fields,
        )
        if failed:
            phase_id = Submission.objects.filter(pk=submission_id).values_list(
                "phase_id", flat=True
            )[0]
            _record_final(submission_id, phase_id, Status.FAILED)
    return failed


def _record_final(
    submission_id: int,
    phase_id: int,
    status: str,
    *,
    fan_out_here: bool = False,
    board_changed: bool = True,
) -> None:
    """The outbox event of a submission that reached a final state (the caller's
    transaction: the event exists exactly when the state does)."""
    event = event_record(
        kind=Kind.SUBMISSION_FAILED if status == Status.FAILED else Kind.SUBMISSION_FINISHED,
        submission_id=submission_id,
        phase_id=phase_id,
        status=str(status),
        board_changed=board_changed,
        send=not fan_out_here,
    )
    if fan_out_here:
        fan_out_after_commit(event.pk)

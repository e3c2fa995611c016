"""Remote evaluation (EvalAI's `remote_evaluation: True`): the hosts' own machine evaluates.

Submissions of such a challenge are never sent to our workers (`submission_enqueue` stops
at `queued`). The hosts' worker polls the challenge's queue, which is the submission table
itself: a message is a queued submission, receiving it claims it for a visibility timeout
(`deadline_at`, `worker = "remote:<token>"`) without changing its status, so EvalAI's loop
still sees `submitted` and marks it running. From there the attempt follows the same
status machine as ours (`submission_claim`, `submission_record_outcome`), its result is
checked by the same parser, and the sweeper treats an attempt that outlives its claim as
a lost worker (`submissions_recover_worker`): run again once, then failed.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.db.models import Q
from django.utils import timezone

from challenges.access import access_challenge_as_host
from challenges.json_limits import json_loads_bounded
from challenges.models import Challenge, Submission
from challenges.results import ResultError, parse_result
from challenges.services.submissions import (
    REMOTE_WORKER_PREFIX,
    WAITING,
    EvaluationRecord,
    SubmissionRefused,
    phase_splits_by_codename,
    submission_claim,
    submission_record_outcome,
)

Status = Submission.Status
QUEUE_PREFIX = "evalserver-challenge-"
_QUEUE_NAME = re.compile(rf"^{QUEUE_PREFIX}(\d+)$")
_RECEIPT_SALT = "evalserver.remote-evaluation.receipt"


class NotRemote(SubmissionRefused):
    """The challenge is evaluated by this platform's workers, not by its hosts."""


def queue_name(challenge: Challenge) -> str:
    """The queue the hosts' worker polls (EvalAI's QUEUE_NAME); shown on the host's page."""
    return f"{QUEUE_PREFIX}{challenge.pk}"


def visibility_timeout() -> dt.timedelta:
    return dt.timedelta(seconds=settings.REMOTE_EVALUATION_VISIBILITY_TIMEOUT_S)


def access_remote_queue(user, name: str) -> Challenge:
    """The remote-evaluation challenge behind queue `name`, for its hosts only.

    DoesNotExist for a name that is no queue or a challenge the user cannot see;
    AccessDenied for anyone who sees it but does not host it.
    """
    match = _QUEUE_NAME.match(name)
    if not match:
        raise Challenge.DoesNotExist(f"There is no queue named {name!r}.")
    challenge = access_challenge_as_host(user, int(match.group(1)))
    if not challenge.remote_evaluation:
        raise NotRemote(
            f"Challenge {challenge.pk} is evaluated by this platform's workers; it has no "
            "remote-evaluation queue (set remote_evaluation: True in its config)."
        )
    return challenge


def access_remote_challenge(user, challenge_id: int) -> Challenge:
    challenge = access_challenge_as_host(user, challenge_id)
    if not challenge.remote_evaluation:
        raise NotRemote(
            f"Challenge {challenge.pk} is evaluated by this platform's workers, not remotely."
        )
    return challenge


@dataclass(frozen=True)
class Message:
    submission: Submission
    receipt_handle: str

    def body(self) -> dict[str, Any]:
        s = self.submission
        return {
            "challenge_pk": s.phase.challenge_id,
            "phase_pk": s.phase_id,
            "submission_pk": s.pk,
            "is_static_dataset_code_upload_submission": False,
        }


def remote_message_receive(
    *, challenge: Challenge, now: dt.datetime | None = None
) -> Message | None:
    """The oldest waiting submission nobody holds, claimed for the visibility timeout."""
    now = now or timezone.now()
    free = Q(deadline_at__isnull=True) | Q(deadline_at__lt=now)
    candidates = (
        Submission.objects.filter(phase__challenge=challenge, status__in=WAITING)
        .filter(free)
        .order_by("submitted_at", "pk")
        .values_list("pk", "attempt")[:20]
    )
    for submission_id, attempt in candidates:
        token = secrets.token_hex(8)
        # Another poller may take the same row between the read and this update: only one
        # update matches, and the loser tries the next candidate.
        taken = (
            Submission.objects.filter(pk=submission_id, status__in=WAITING, attempt=attempt)
            .filter(free)
            .update(deadline_at=now + visibility_timeout(), worker=REMOTE_WORKER_PREFIX + token)
        )
        if taken == 1:
            receipt = signing.dumps(
                {"s": submission_id, "a": attempt, "t": token}, salt=_RECEIPT_SALT
            )
            submission = Submission.objects.select_related("phase").get(pk=submission_id)
            return Message(submission, receipt)
    return None


def remote_message_delete(*, challenge: Challenge, receipt_handle: str) -> Submission:
    """Acknowledge a message. The attempt it named keeps its state: a submission that has
    not ended stays claimed until its timeout and is then delivered again."""
    try:
        data = signing.loads(receipt_handle, salt=_RECEIPT_SALT)
        submission_id = int(data["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise SubmissionRefused(
            "The receipt_handle is not one this queue gave out: pass the receipt_handle of a "
            "message received from GET /api/jobs/challenge/queues/<queue_name>/.",
            field="receipt_handle",
        ) from None
    return Submission.objects.get(pk=submission_id, phase__challenge=challenge)


def _remote_submission(challenge: Challenge, submission_id: Any) -> Submission:
    try:
        pk = int(submission_id)
        if not 0 < pk < 2**63:  # beyond the database's integers: no such submission
            raise ValueError
    except (TypeError, ValueError):
        raise SubmissionRefused(
            f"submission must be a submission id, not {submission_id!r}.", field="submission"
        ) from None
    return Submission.objects.select_related("phase__challenge", "team").get(
        pk=pk, phase__challenge=challenge
    )


def _start(submission: Submission) -> Submission:
    """Queued -> running for the hosts' machine: the claim of our workers, with the
    visibility timeout as its time limit."""
    if submission.status in WAITING:
        worker = submission.worker
        if not worker.startswith(REMOTE_WORKER_PREFIX):
            worker = REMOTE_WORKER_PREFIX + secrets.token_hex(8)
        claimed = submission_claim(
            submission_id=submission.pk,
            worker=worker,
            time_limit_s=visibility_timeout().total_seconds(),
        )
        if claimed is not None:
            return claimed
        submission.refresh_from_db()
    if submission.status != Status.RUNNING or not submission.worker.startswith(
        REMOTE_WORKER_PREFIX
    ):
        raise SubmissionRefused(
            f"Submission {submission.pk} is {submission.status}; only a submitted or running "
            "submission can be updated.",
            field="submission",
        )
    return submission


def remote_submission_start(*, challenge: Challenge, submission_id: Any) -> Submission:
    return _start(_remote_submission(challenge, submission_id))


def _json_field(value: Any, name: str) -> Any:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        return value
    try:
        return json_loads_bounded(value, where=name)
    except ValueError as exc:
        raise SubmissionRefused(str(exc), field=name) from None


def remote_submission_finish(
    *,
    challenge: Challenge,
    submission_id: Any,
    phase_id: Any,
    finished: bool,
    result: Any = None,
    stdout: str = "",
    stderr: str = "",
    metadata: Any = None,
) -> Submission:
    """Record the outcome the hosts' machine posts, as a worker's would be recorded.

    A result that does not fit the phase's splits and labels is refused (400) and the
    attempt stays running, so the host can post a corrected one before its timeout.
    """
    submission = _remote_submission(challenge, submission_id)
    if phase_id not in (None, "") and str(phase_id) != str(submission.phase_id):
        raise SubmissionRefused(
            f"Submission {submission.pk} belongs to phase {submission.phase_id}, not {phase_id}.",
            field="challenge_phase",
        )
    submission = _start(submission)
    phase_splits = None
    limit = settings.EVALUATION_LOG_MAX_BYTES
    stdout, stderr = (stdout or "")[-limit:], (stderr or "")[-limit:]
    started = submission.started_at or timezone.now()
    wall = (timezone.now() - started).total_seconds()
    common = {
        "stdout": stdout,
        "stderr": stderr,
        "wall_time_s": wall,
        "execution": {"remote": True, "worker": submission.worker, "wall_s": round(wall, 4)},
        "submission_metadata": _json_field(metadata, "metadata"),
    }
    if finished:
        phase_splits = phase_splits_by_codename(submission.phase_id)
        splits = {codename: ps.leaderboard.labels for codename, ps in phase_splits.items()}
        try:
            parsed = parse_result(
                {"result": _json_field(result, "result")},
                splits=splits,
                partial_ok=submission.phase.is_partial_submission_evaluation_enabled,
            )
        except ResultError as exc:
            raise SubmissionRefused(str(exc), field="result") from None
        record = EvaluationRecord(
            ok=True,
            scores=parsed.scores,
            missing_splits=parsed.missing_splits,
            # What the team reads of its own result, as EvalAI's result file holds only
            # the splits shown to participants.
            submission_result=[
                {split: scores}
                for split, scores in parsed.scores.items()
                if split not in parsed.hidden_splits
            ],
            hidden_splits=parsed.hidden_splits,
            **common,
        )
    else:
        record = EvaluationRecord(
            ok=False,
            scores={},
            missing_splits=[],
            failure_kind="exception",
            failure_message="The evaluation on the hosts' machine failed.",
            **common,
        )
    if not submission_record_outcome(submission=submission, record=record, splits=phase_splits):
        raise SubmissionRefused(
            f"Submission {submission.pk} was taken over (cancelled, re-run or timed out) "
            "before this result arrived; it was not recorded.",
            field="submission",
        )
    submission.refresh_from_db()
    return submission

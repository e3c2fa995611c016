"""Submissions: creation under quotas, state transitions, results.

Every transition is a conditional update (`filter(pk=..., status=OLD).update(...)`)
that checks how many rows changed: another worker, the sweeper or a cancel may
have got there first, and then this caller must do nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import zipfile
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from challenges.access import AccessDenied, user_is_challenge_host
from challenges.leaderboard_rules import initial_is_public
from challenges.models import (
    AuditEvent,
    ChallengeParticipation,
    ChallengePhase,
    ChallengePhaseSplit,
    Submission,
    SubmissionResult,
)
from challenges.services.audit import audit_record
from challenges.services.leaderboards import (
    leaderboard_add_results,
    leaderboard_rebuild,
    leaderboard_refresh_team,
)
from challenges.services.storage import safe_basename, sha256_stream

log = logging.getLogger(__name__)

EVALUATE_TASK = "workers.evaluate_submission"
# `Submission.worker` of attempts claimed by a host's machine through EvalAI's queue API.
REMOTE_WORKER_PREFIX = "remote:"
Status = Submission.Status


class SubmissionRefused(Exception):
    """The submission is not accepted. The message says why and what to do."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class StorageExceeded(SubmissionRefused):
    """The team's stored submission files in the challenge would pass the operator's cap."""

    status_code = 413

    def __init__(self, *, limit: int, used: int, incoming: int):
        super().__init__(
            f"Your team already stores {used} bytes of submission files in this challenge; "
            f"this upload of {incoming} bytes would pass the cap of {limit} bytes per team "
            "(SUBMISSION_TEAM_STORAGE_BYTES). Failed submissions' files are removed after "
            f"{settings.FAILED_SUBMISSION_RETENTION_DAYS} day(s); ask the hosts or the "
            "operator if you need more.",
            field="file",
        )
        self.limit, self.used, self.incoming = limit, used, incoming


class FileTooLarge(SubmissionRefused):
    """The declared or received size passes a limit; the message names it."""

    status_code = 413


class QuotaExceeded(SubmissionRefused):
    status_code = 429

    def __init__(self, quota: str, message: str, resets_at: dt.datetime | None):
        super().__init__(message, field="quota")
        self.quota = quota
        self.resets_at = resets_at


# ---------------------------------------------------------------- quotas


@dataclass
class QuotaState:
    quota: str
    limit: int
    used: int
    resets_at: dt.datetime | None

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "quota": self.quota,
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
        }


def _day_and_month_start(
    now: dt.datetime,
) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    return day, day + dt.timedelta(days=1), month, next_month


def quota_state(
    *, phase: ChallengePhase, team_id: int, now: dt.datetime | None = None
) -> list[QuotaState]:
    """Used and remaining submissions of a team in a phase, per quota, in one query."""
    now = now or timezone.now()
    day, next_day, month, next_month = _day_and_month_start(now)
    counted = ~Q(status__in=Submission.NOT_COUNTED)
    counts = Submission.objects.filter(phase=phase, team_id=team_id).aggregate(
        total=Count("pk", filter=counted),
        today=Count("pk", filter=counted & Q(submitted_at__gte=day)),
        month=Count("pk", filter=counted & Q(submitted_at__gte=month)),
        concurrent=Count("pk", filter=Q(status__in=Submission.IN_FLIGHT)),
        failed_today=Count("pk", filter=Q(status=Status.FAILED, submitted_at__gte=day)),
    )
    # Failed submissions use no quota (as on EvalAI and Kaggle), yet each stored a file
    # and took a worker: an operator's cap per team, phase and UTC day stops a team from
    # filling the disk with uploads it knows will fail. 0 turns it off.
    failed = []
    if settings.SUBMISSION_MAX_FAILED_PER_DAY > 0:
        failed = [
            QuotaState(
                "failed_per_day",
                settings.SUBMISSION_MAX_FAILED_PER_DAY,
                counts["failed_today"],
                next_day,
            )
        ]
    return [
        QuotaState("per_day", phase.max_submissions_per_day, counts["today"], next_day),
        QuotaState("per_month", phase.max_submissions_per_month, counts["month"], next_month),
        QuotaState("total", phase.max_submissions, counts["total"], None),
        QuotaState(
            "concurrent", phase.max_concurrent_submissions_allowed, counts["concurrent"], None
        ),
        *failed,
    ]


_QUOTA_TEXT = {
    "per_day": "the daily limit of {limit} submission(s) (UTC day) is used up; it resets at {resets}",
    "per_month": "the monthly limit of {limit} submission(s) is used up; it resets at {resets}",
    "total": "the phase's limit of {limit} submission(s) in total is used up",
    "concurrent": "{limit} submission(s) are already waiting or running, the most allowed at once; "
    "submit again when one finishes",
    "failed_per_day": "your team's submissions to this phase failed {limit} time(s) today "
    "(SUBMISSION_MAX_FAILED_PER_DAY, per UTC day), the most the platform keeps; read the "
    "failures' messages, check your file locally, and submit again after {resets}",
}


def _check_quotas(states: list[QuotaState]) -> None:
    for state in states:
        if state.remaining <= 0:
            resets = state.resets_at.strftime("%Y-%m-%d %H:%M UTC") if state.resets_at else ""
            raise QuotaExceeded(
                state.quota,
                "Quota reached: "
                + _QUOTA_TEXT[state.quota].format(limit=state.limit, resets=resets)
                + ".",
                state.resets_at,
            )


# ---------------------------------------------------------------- stored bytes


def team_storage_used(*, challenge_id: int, team_id: int) -> int:
    """Bytes of the team's submission files still stored for the challenge."""
    used = Submission.objects.filter(
        phase__challenge_id=challenge_id, team_id=team_id, input_purged_at__isnull=True
    ).aggregate(total=Sum("input_size"))["total"]
    return used or 0


def team_storage_check(*, challenge_id: int, team_id: int, incoming: int | None) -> None:
    """Raise StorageExceeded when `incoming` more bytes would pass the team's cap."""
    limit = settings.SUBMISSION_TEAM_STORAGE_BYTES
    if limit <= 0:
        return
    used = team_storage_used(challenge_id=challenge_id, team_id=team_id)
    if used + (incoming or 0) > limit:
        raise StorageExceeded(limit=limit, used=used, incoming=incoming or 0)


# ---------------------------------------------------------------- input checks


def _check_phase_open(phase: ChallengePhase, now: dt.datetime) -> None:
    challenge = phase.challenge
    if not challenge.approved_by_admin:
        raise SubmissionRefused(
            "This challenge is not approved yet; submissions open once an admin approves it."
        )
    if phase.start_date and now < phase.start_date:
        raise SubmissionRefused(
            f"Phase {phase.codename!r} opens at {phase.start_date:%Y-%m-%d %H:%M} UTC."
        )
    if phase.end_date and now >= phase.end_date:
        raise SubmissionRefused(
            f"Phase {phase.codename!r} closed at {phase.end_date:%Y-%m-%d %H:%M} UTC."
        )
    if now >= challenge.end_date:
        raise SubmissionRefused("The challenge has ended.")
    if phase.is_submission_paused:
        raise SubmissionRefused(
            f"The hosts have paused submissions to phase {phase.codename!r}; try again later."
        )


def max_upload_bytes(phase: ChallengePhase) -> int:
    return phase.max_submission_size_bytes or settings.SUBMISSION_MAX_BYTES


def _check_file(phase: ChallengePhase, upload: UploadedFile) -> None:
    name = upload.name or ""
    allowed = [t.lower() for t in phase.allowed_submission_file_types or []]
    lowered = name.lower()
    if allowed and not any(lowered.endswith(ext) for ext in allowed):
        raise SubmissionRefused(
            f"{safe_basename(name)!r} is not an accepted file type; this phase accepts {', '.join(allowed)}.",
            field="file",
        )
    limit = max_upload_bytes(phase)
    if upload.size is not None and upload.size > limit:
        raise SubmissionRefused(
            f"The file is {upload.size} bytes; this phase accepts at most {limit}.", field="file"
        )
    if upload.size == 0:
        raise SubmissionRefused("The file is empty.", field="file")
    problem = _sniff(lowered, upload)
    if problem:
        raise SubmissionRefused(f"{safe_basename(name)!r}: {problem}", field="file")


def _sniff(name: str, upload: UploadedFile) -> str | None:
    """Check the content matches the extension, reading only the start of the file."""
    upload.seek(0)
    head = upload.read(8192)
    upload.seek(0)
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(upload) as zf:
                zf.infolist()
        except zipfile.BadZipFile:
            return "the file is named .zip but is not a zip archive."
        finally:
            upload.seek(0)
    elif name.endswith((".csv", ".tsv", ".txt", ".json")):
        if b"\x00" in head:
            return "the file should be text but contains binary data."
        if (
            name.endswith(".json")
            and head.lstrip()[:1] not in (b"{", b"[", b'"')
            and not head.lstrip()[:1].isdigit()
        ):
            return "the file is named .json but does not start like JSON."
    elif name.endswith(".gz") and not head.startswith(b"\x1f\x8b"):
        return "the file is named .gz but is not gzip-compressed."
    return None


def validate_meta_attributes(
    phase: ChallengePhase, values: dict[str, Any] | None
) -> dict[str, Any]:
    """Check submitted meta attributes against the phase's `submission_meta_attributes`."""
    values = dict(values or {})
    definitions = {
        d.get("name"): d for d in phase.submission_meta_attributes or [] if isinstance(d, dict)
    }
    errors = []
    clean: dict[str, Any] = {}
    for name in values:
        if name not in definitions:
            errors.append(f"{name!r} is not a meta attribute of this phase")
    for name, definition in definitions.items():
        kind, options = (
            definition.get("type", "text"),
            [str(o) for o in definition.get("options") or []],
        )
        required = str(definition.get("required", False)).lower() == "true"
        if name not in values or values[name] in (None, "", []):
            if required:
                errors.append(f"{name!r} is required")
            continue
        value = values[name]
        if kind == "text":
            if not isinstance(value, str) or len(value) > 10000:
                errors.append(f"{name!r} must be text of at most 10,000 characters")
                continue
        elif kind == "radio":
            if str(value) not in options:
                errors.append(f"{name!r} must be one of {', '.join(options)}")
                continue
            value = str(value)
        elif kind == "checkbox":
            chosen = value if isinstance(value, list) else [value]
            bad = [str(v) for v in chosen if str(v) not in options]
            if bad:
                errors.append(f"{name!r}: {', '.join(bad)} not among {', '.join(options)}")
                continue
            value = [str(v) for v in chosen]
        elif kind == "boolean":
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                value = value.lower() == "true"
            if not isinstance(value, bool):
                errors.append(f"{name!r} must be true or false")
                continue
        clean[name] = value
    if errors:
        raise SubmissionRefused(
            "Meta attributes: " + "; ".join(errors) + ".", field="meta_attributes"
        )
    return clean


def _check_allowed_email(phase: ChallengePhase, user) -> None:
    allowed = [e.lower() for e in phase.allowed_email_ids or []]
    if allowed and (user.email or "").lower() not in allowed:
        raise AccessDenied(
            f"Phase {phase.codename!r} is open only to invited participants; your email is not on its list."
        )


# ---------------------------------------------------------------- creation


def submission_check_before_upload(
    *,
    user,
    phase: ChallengePhase,
    participation: ChallengeParticipation | None,
    file_name: str,
    size: int,
    pending_bytes: int = 0,
) -> None:
    """What `submission_create` checks that needs no content, for an upload that declares
    its name and size before its first byte (resumable uploads): who, when, which file type,
    how large, the team's storage (with `pending_bytes` of its other unfinished uploads) and
    its quotas. `submission_create` checks everything again when the file is complete."""
    is_host = user_is_challenge_host(user, phase.challenge)
    if participation is None:
        raise AccessDenied(
            "Your team does not take part in this challenge: join a team and accept the terms first."
        )
    if hasattr(phase, "tournament"):
        raise SubmissionRefused(
            f"Phase {phase.codename!r} is a tournament: upload models and round predictions "
            "through its tournament endpoints."
        )
    if not is_host:
        _check_phase_open(phase, timezone.now())
        _check_allowed_email(phase, user)
    elif not phase.challenge.approved_by_admin:
        raise SubmissionRefused(
            "This challenge is not approved yet; submissions open once an admin approves it."
        )
    allowed = [t.lower() for t in phase.allowed_submission_file_types or []]
    if allowed and not any(file_name.lower().endswith(ext) for ext in allowed):
        raise SubmissionRefused(
            f"{safe_basename(file_name)!r} is not an accepted file type; this phase accepts "
            f"{', '.join(allowed)}.",
            field="file",
        )
    limit = max_upload_bytes(phase)
    if size > limit:
        raise FileTooLarge(
            f"The file is {size} bytes; phase {phase.codename!r} accepts at most {limit} bytes "
            "per submission (max_submission_size_bytes, else SUBMISSION_MAX_BYTES).",
            field="file",
        )
    if size <= 0:
        raise SubmissionRefused("The file is empty.", field="file")
    if not is_host:
        team_storage_check(
            challenge_id=phase.challenge_id,
            team_id=participation.team_id,
            incoming=size + pending_bytes,
        )
        _check_quotas(quota_state(phase=phase, team_id=participation.team_id))


def submission_create(
    *,
    user,
    phase: ChallengePhase,
    participation: ChallengeParticipation | None,
    upload: UploadedFile,
    method_name: str = "",
    method_description: str = "",
    project_url: str = "",
    publication_url: str = "",
    meta_attributes: dict[str, Any] | None = None,
    is_public: bool | None = None,
    is_baseline: bool = False,
    pk: int | None = None,
) -> Submission:
    """Accept a submission file: checks, then stream to storage, then quotas under a row lock.

    The file goes to storage before the lock so the lock is held for milliseconds, not for
    the upload; a refused submission's file is deleted again. `pk`: an id reserved earlier
    (`submission_reserve_id`), for uploads that announce their id before the file arrives.
    """
    now = timezone.now()
    is_host = user_is_challenge_host(user, phase.challenge)
    if participation is None:
        raise AccessDenied(
            "Your team does not take part in this challenge: join a team and accept the terms first."
        )
    if is_baseline and not is_host:
        raise AccessDenied("Only hosts can add baseline submissions.")
    if hasattr(phase, "tournament"):
        # Tournament phases take models and round predictions (challenges.services.tournaments).
        raise SubmissionRefused(
            f"Phase {phase.codename!r} is a tournament: upload a model to "
            "/api/challenges/<id>/phases/<phase>/tournament/models/ or predictions for the open "
            "round to .../tournament/rounds/<number>/submissions/."
        )
    if not is_host:
        _check_phase_open(phase, now)
        _check_allowed_email(phase, user)
    elif not phase.challenge.approved_by_admin:
        raise SubmissionRefused(
            "This challenge is not approved yet; submissions open once an admin approves it."
        )
    _check_file(phase, upload)
    meta = validate_meta_attributes(phase, meta_attributes)
    team_id = participation.team_id
    if not is_host:
        # Before the file is stored; again under the lock below, where concurrent uploads
        # of the team are serialised.
        team_storage_check(challenge_id=phase.challenge_id, team_id=team_id, incoming=upload.size)

    upload.seek(0)
    sha, size = sha256_stream(upload)
    upload.seek(0)
    folder = f"submissions/{phase.challenge_id}/{phase.pk}/{team_id}"
    path = default_storage.save(
        f"{folder}/{sha[:16]}-{safe_basename(upload.name or 'submission')}", upload
    )
    try:
        with transaction.atomic():
            # The row lock serialises concurrent submissions of one team: the count and
            # the insert below cannot interleave with another request's.
            ChallengeParticipation.objects.select_for_update().get(pk=participation.pk)
            if not is_host:
                _check_quotas(quota_state(phase=phase, team_id=team_id, now=now))
                team_storage_check(challenge_id=phase.challenge_id, team_id=team_id, incoming=size)
            public = initial_is_public(phase, is_public)
            if public and phase.is_restricted_to_select_one_submission:
                # One public submission per team: the new one replaces the old (as in EvalAI).
                Submission.objects.filter(phase=phase, team_id=team_id, is_public=True).update(
                    is_public=False
                )
            submission = Submission.objects.create(
                pk=pk,
                phase=phase,
                team_id=team_id,
                created_by=user,
                input_file=path,
                file_name=(upload.name or "submission")[:255],
                input_sha256=sha,
                input_size=size,
                method_name=method_name,
                method_description=method_description,
                project_url=project_url,
                publication_url=publication_url,
                meta_attributes=meta,
                is_public=public,
                is_baseline=is_baseline,
                submitted_at=now,
            )
            if public and phase.is_restricted_to_select_one_submission:
                leaderboard_refresh_team(phase=phase, team_id=team_id)
            transaction.on_commit(lambda: submission_enqueue(submission_id=submission.pk))
    except BaseException:
        default_storage.delete(path)
        raise
    return submission


def submission_reserve_id() -> int:
    """A submission id no insert will take: EvalAI's large-file upload tells the client its
    submission's id before the file (and so the submission) exists."""
    from django.db import connection

    table = Submission._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
            return int(cursor.fetchone()[0])
        if connection.vendor == "sqlite":
            # AUTOINCREMENT never reuses an id at or below sqlite_sequence's value.
            with transaction.atomic():
                cursor.execute("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = %s", [table])
                if cursor.rowcount == 0:
                    cursor.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, 1)", [table]
                    )
                cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
                return int(cursor.fetchone()[0])
    raise SubmissionRefused(f"Reserving submission ids is not supported on {connection.vendor}.")


# ---------------------------------------------------------------- queueing


def submission_enqueue(*, submission_id: int) -> bool:
    """Mark a submission queued and hand its id to the broker. Safe to call again.

    When the broker is unreachable the submission stays queued; the sweeper sends it again.
    """
    from celery import current_app

    now = timezone.now()
    Submission.objects.filter(pk=submission_id, status=Status.SUBMITTED).update(
        status=Status.QUEUED, queued_at=now
    )
    Submission.objects.filter(pk=submission_id).update(enqueue_count=F("enqueue_count") + 1)
    if Submission.objects.filter(
        pk=submission_id, phase__challenge__remote_evaluation=True
    ).exists():
        # The hosts' own machine evaluates it: it waits, queued, until their worker polls
        # the challenge's queue (challenges.services.remote_evaluation).
        return True
    try:
        current_app.send_task(
            EVALUATE_TASK,
            args=[submission_id],
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


# ---------------------------------------------------------------- transitions


def submission_claim(
    *, submission_id: int, worker: str, time_limit_s: float, status: str = Status.RUNNING
) -> Submission | None:
    """Move a queued submission to running (code submissions: predicting) for `worker`.
    None if someone else has it."""
    now = timezone.now()
    grace = dt.timedelta(seconds=settings.SUBMISSION_DEADLINE_GRACE_S)
    claimed = Submission.objects.filter(
        pk=submission_id, status__in=[Status.SUBMITTED, Status.QUEUED]
    ).update(
        status=status,
        started_at=now,
        finished_at=None,
        worker=worker,
        deadline_at=now + dt.timedelta(seconds=time_limit_s) + grace,
    )
    if (
        claimed != 1
        and not Submission.objects.filter(pk=submission_id, status=status, worker=worker).exists()
    ):
        # (The second check: a retry after the reply to our first try was lost, when the
        # database restarted mid-commit. The first try may have landed; `worker` carries
        # a nonce per claim, so a row with it is ours and no one else's.)
        return None
    return Submission.objects.select_related("phase__challenge", "team").get(pk=submission_id)


def submission_advance(*, submission: Submission, from_status: str, to_status: str) -> bool:
    """A code submission's next step (predicting -> validating -> running), for the attempt
    this worker holds. False when a cancel, a sweep or a re-run got there first: stop."""
    moved = Submission.objects.filter(
        pk=submission.pk,
        status=from_status,
        attempt=submission.attempt,
        worker=submission.worker,
    ).update(status=to_status)
    if moved == 1:
        submission.status = to_status
    return moved == 1


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


def submission_record_outcome(
    *, submission: Submission, record: EvaluationRecord, from_status: str = Status.RUNNING
) -> bool:
    """Write an attempt's outcome and its results in one transaction.

    Only the attempt that is still running under this worker may finish it: after a
    cancel, a sweep or a re-run, the update matches no row and nothing is written. A code
    submission whose model failed ends from `predicting` or `validating`.
    """
    now = timezone.now()
    if record.ok:
        status = Status.PARTIALLY_EVALUATED if record.missing_splits else Status.FINISHED
    else:
        status = Status.FAILED
    with transaction.atomic():
        updated = Submission.objects.filter(
            pk=submission.pk,
            status=from_status,
            attempt=submission.attempt,
            worker=submission.worker,
        ).update(
            status=status,
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
        if updated != 1:
            log.info(
                "submission %s attempt %s was taken over; outcome dropped",
                submission.pk,
                submission.attempt,
            )
            return False
        if record.ok:
            splits = {
                ps.dataset_split.codename: ps
                for ps in ChallengePhaseSplit.objects.filter(
                    phase_id=submission.phase_id
                ).select_related("dataset_split", "leaderboard")
            }
            SubmissionResult.objects.filter(submission=submission, is_active=True).update(
                is_active=False
            )
            SubmissionResult.objects.bulk_create(
                [
                    SubmissionResult(
                        submission=submission,
                        phase_split=splits[codename],
                        attempt=submission.attempt,
                        scores=scores,
                        created_at=now,
                    )
                    for codename, scores in record.scores.items()
                ]
            )
            # The team's standing changes with the result, in the same transaction: a
            # reader never sees a result without its leaderboard entry, or the reverse.
            leaderboard_add_results(
                submission=submission,
                scores_by_split={
                    splits[codename].pk: scores for codename, scores in record.scores.items()
                },
                splits=splits.values(),
            )
    return True


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str).replace("NaN", "null"))


def submission_fail(
    *, submission_id: int, from_statuses: tuple[str, ...], kind: str, message: str
) -> bool:
    """Fail a submission that is still in one of `from_statuses` (sweeper, platform errors)."""
    return (
        Submission.objects.filter(pk=submission_id, status__in=from_statuses).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            deadline_at=None,
            failure_kind=kind,
            failure_message=message,
        )
        == 1
    )


def submission_cancel(*, submission: Submission, user) -> bool:
    """Cancel a submission that has not finished. The owner's team or a host may."""
    if not (
        user_is_challenge_host(user, submission.phase.challenge)
        or submission.team.memberships.filter(user=user).exists()
    ):
        raise AccessDenied(
            "Only the submitting team or the challenge's hosts can cancel this submission."
        )
    done = Submission.objects.filter(pk=submission.pk, status__in=Submission.IN_FLIGHT).update(
        status=Status.CANCELLED,
        finished_at=timezone.now(),
        deadline_at=None,
        failure_message="Cancelled.",
    )
    if done != 1:
        raise SubmissionRefused(
            f"Submission {submission.pk} has already ended; it cannot be cancelled."
        )
    return True


def submission_rerun(
    *, submission: Submission, user, refresh_leaderboard: bool = True
) -> Submission:
    """Host re-run: a new attempt; the old attempt's results stop counting at once.

    `refresh_leaderboard=False` leaves the team's entries to the caller, which must
    rebuild them (`phase_rescore` rebuilds the phase once instead of once per rerun).
    """
    if not user_is_challenge_host(user, submission.phase.challenge):
        raise AccessDenied("Only the challenge's hosts can re-run submissions.")
    if submission.input_purged_at is not None:
        raise SubmissionRefused(
            f"Submission {submission.pk} failed and its file was removed on "
            f"{submission.input_purged_at:%Y-%m-%d} (FAILED_SUBMISSION_RETENTION_DAYS); "
            "it cannot run again."
        )
    with transaction.atomic():
        updated = Submission.objects.filter(pk=submission.pk, status__in=Submission.FINAL).update(
            status=Status.SUBMITTED,
            attempt=F("attempt") + 1,
            queued_at=None,
            started_at=None,
            finished_at=None,
            worker="",
            failure_kind="",
            failure_message="",
            traceback="",
        )
        if updated != 1:
            raise SubmissionRefused(
                f"Submission {submission.pk} is still in progress; re-run it when it has ended."
            )
        SubmissionResult.objects.filter(submission=submission, is_active=True).update(
            is_active=False
        )
        if refresh_leaderboard:
            leaderboard_refresh_team(phase=submission.phase, team_id=submission.team_id)
            # A phase re-score records itself once, not once per submission.
            audit_record(
                actor=user,
                action=AuditEvent.Action.SUBMISSION_RERUN,
                challenge=submission.phase.challenge,
                target=f"submission {submission.pk}",
                attempt=submission.attempt + 1,
            )
        transaction.on_commit(lambda: submission_enqueue(submission_id=submission.pk))
    submission.refresh_from_db()
    return submission


def phase_rescore(*, phase: ChallengePhase, user) -> int:
    """Re-run every ended submission of a phase (after a new script version). Returns how many."""
    if not user_is_challenge_host(user, phase.challenge):
        raise AccessDenied("Only the challenge's hosts can re-score a phase.")
    ids = list(
        Submission.objects.filter(
            phase=phase,
            status__in=[Status.FINISHED, Status.PARTIALLY_EVALUATED, Status.FAILED],
            input_purged_at__isnull=True,  # nothing left to run
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        for submission in Submission.objects.filter(pk__in=ids).select_related("phase__challenge"):
            submission_rerun(submission=submission, user=user, refresh_leaderboard=False)
        # One rebuild rather than one recomputation per team and submission; in the same
        # transaction, so no reader sees entries of results that no longer count, and
        # enqueued reruns (sent on commit) merge their results into the rebuilt entries.
        leaderboard_rebuild(phase=phase)
        audit_record(
            actor=user,
            action=AuditEvent.Action.PHASE_RESCORE,
            challenge=phase.challenge,
            target=f"phase {phase.codename}",
            submissions=len(ids),
        )
    return len(ids)


# ---------------------------------------------------------------- the sweeper


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
    overdue = Submission.objects.filter(
        status__in=[Status.RUNNING, Status.PREDICTING, Status.VALIDATING], deadline_at__lt=now
    ).values_list("pk", "worker")
    for submission_id, worker in overdue:
        if submission_fail(
            submission_id=submission_id,
            from_statuses=(Status.RUNNING, Status.PREDICTING, Status.VALIDATING),
            kind="lost",
            message=f"The worker evaluating this submission ({worker or 'unknown'}) stopped responding; "
            "the hosts can re-run it.",
        ):
            report.failed += 1
    return report


def submissions_recover_worker(
    *, worker_prefix: str, max_attempts: int = 2, deadline_before: dt.datetime | None = None
) -> SweepReport:
    """At worker start: submissions a previous instance of this worker left running.

    They are run again once (the crash was probably not theirs); a submission whose
    evaluation killed the worker twice fails with that reason. With `deadline_before`,
    only those whose deadline passed (the sweeper, for remote evaluations).
    """
    report = SweepReport()
    running = Submission.objects.filter(
        status__in=[Status.RUNNING, Status.PREDICTING, Status.VALIDATING],
        worker__startswith=worker_prefix,
    )
    if deadline_before is not None:
        running = running.filter(deadline_at__lt=deadline_before)
    running = running.values_list("pk", "lost_count")
    for submission_id, lost_count in running:
        if lost_count + 1 >= max_attempts:
            # This death counts too: lost_count is the number of workers it took down.
            failed = Submission.objects.filter(
                pk=submission_id, status__in=[Status.RUNNING, Status.PREDICTING, Status.VALIDATING]
            ).update(
                status=Status.FAILED,
                finished_at=timezone.now(),
                deadline_at=None,
                lost_count=F("lost_count") + 1,
                failure_kind="lost",
                failure_message="The worker died while evaluating this submission, twice; "
                "it was not retried again.",
            )
            report.failed += failed
            continue
        updated = Submission.objects.filter(
            pk=submission_id, status__in=[Status.RUNNING, Status.PREDICTING, Status.VALIDATING]
        ).update(
            status=Status.SUBMITTED,
            attempt=F("attempt") + 1,
            lost_count=F("lost_count") + 1,
            worker="",
            started_at=None,
            deadline_at=None,
        )
        if updated == 1:
            transaction.on_commit(lambda sid=submission_id: submission_enqueue(submission_id=sid))
            report.requeued += 1
    return report

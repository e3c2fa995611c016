"""Evaluating one submission: claim it, run the challenge's evaluate() in the sandbox,
record the outcome. Called by the thin Celery task."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import time
import uuid
from functools import cache
from importlib import metadata
from pathlib import Path

from django.db import InterfaceError, OperationalError, connection

from challenges.models import ChallengePhase, ChallengePhaseSplit, EvaluationScript, Submission
from challenges.prepared import Prepared
from challenges.services.submissions import (
    EvaluationRecord,
    phase_splits_by_codename,
    submission_claim,
    submission_fail,
    submission_record_outcome,
)
from workers.code_evaluation import evaluate_code
from workers.environments import EnvironmentError_, python_for
from workers.sandbox.evaluators import get_evaluator
from workers.sandbox.runner import Limits, Outcome, phase_limits
from workers.scripts import local_files, script_root_for, staged, stored

log = logging.getLogger(__name__)

RECORDED_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "cloudpickle", "pyarrow")
Status = Submission.Status


@cache
def runtime_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


# A database restart cuts every connection; PostgreSQL is back within seconds. Waiting
# that long beats failing an evaluation that already ran (or leaving it running until the
# sweeper's deadline). Every write retried here is a conditional update: if the first
# try committed and only the answer was lost, the retry matches no row.
DB_RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


def _db_retry(what: str, fn):
    for delay in (*DB_RETRY_DELAYS_S, None):
        try:
            return fn()
        except (OperationalError, InterfaceError) as exc:
            if delay is None:
                raise
            log.warning("database unavailable while %s (%s); retrying in %g s", what, exc, delay)
            connection.close()
            time.sleep(delay)
    raise AssertionError("unreachable")


def evaluate_submission(*, submission_id: int, worker_node: str) -> Submission | None:
    """Run one attempt of a submission. Does nothing if another worker has it or it ended."""
    # One read for everything the evaluation needs of the row, its phase and team; the
    # claim then requires the attempt read here (submission_claim's `loaded`). Not the
    # challenge: nothing here reads it, and its 34 columns made this the costliest
    # query of the task to compile and decode.
    loaded = _db_retry("reading the submission", lambda: _waiting(submission_id))
    if loaded is None:
        return None
    limits = phase_limits(loaded.phase.resources)
    code = loaded.phase.submission_type == ChallengePhase.SubmissionType.CODE
    claim_name = f"{worker_node}/{os.getpid()}#{uuid.uuid4().hex[:8]}"
    submission = _db_retry(
        "claiming",
        lambda: submission_claim(
            submission_id=submission_id,
            # One name per claim (node/pid#nonce): a retried claim recognises its own.
            worker=claim_name,
            # A code submission's model and then evaluate() each get the phase's time limit.
            time_limit_s=limits.time_limit_s * (2 if code else 1),
            status=Status.PREDICTING if code else Status.RUNNING,
            loaded=loaded,
        ),
    )
    if submission is None:
        return None
    try:
        if code:
            record, from_status = evaluate_code(
                submission, limits, evaluate=_evaluate, record_base=runtime_versions
            )
            if record is None:
                return submission  # cancelled or swept between two steps
        else:
            record, from_status = _evaluate(submission, limits), Status.RUNNING
    except EnvironmentError_ as exc:
        _fail(submission_id, "environment", str(exc))
        return submission
    except Exception as exc:
        log.exception("platform error evaluating submission %s", submission_id)
        _fail(
            submission_id,
            "platform",
            f"The platform could not evaluate this submission ({type(exc).__name__}); "
            "the hosts have been told.",
        )
        return submission
    _db_retry(
        "recording the outcome",
        lambda: submission_record_outcome(
            submission=submission,
            record=record,
            from_status=from_status,
            splits=phase_splits(submission.phase) if record.ok else None,
            # The team is told by this task once the outcome commits, not by another.
            fan_out_here=True,
        ),
    )
    return submission


# get(), not first(): first() would order the one row (Meta.ordering), a sort for
# PostgreSQL. Compiled once per process (challenges.prepared): this read's 60-odd columns
# made it the costliest query of the task to build.
_WAITING = Prepared(
    lambda pk: Submission.objects.select_related("phase", "team").filter(
        pk=pk, status__in=[Status.SUBMITTED, Status.QUEUED]
    ),
    int,
)
_NEWEST_SCRIPT = Prepared(
    lambda challenge_id: EvaluationScript.objects.filter(challenge_id=challenge_id).order_by(
        "-version"
    )[:1],
    int,
)


def _waiting(submission_id: int) -> Submission | None:
    found = _WAITING(submission_id)
    return found[0] if found else None


def _fail(submission_id: int, kind: str, message: str) -> None:
    _db_retry(
        "recording the failure",
        lambda: submission_fail(submission_id=submission_id, kind=kind, message=message),
    )


def phase_script_and_splits(phase: ChallengePhase):
    """The challenge's newest script version, and each of the phase's splits' labels: what
    evaluate() runs with and what its result must name."""
    script = next(iter(_NEWEST_SCRIPT(phase.challenge_id)), None)
    labels = {codename: ps.leaderboard.labels for codename, ps in phase_splits(phase).items()}
    return script, labels


def phase_splits(phase: ChallengePhase) -> dict[str, ChallengePhaseSplit]:
    """The phase's splits by codename, read once per phase object: the labels evaluate()'s
    result must name, and then what the results are recorded against."""
    cached = phase.__dict__.get("_splits_by_codename")
    if cached is None:
        cached = phase.__dict__["_splits_by_codename"] = phase_splits_by_codename(phase.pk)
    return cached


def _script_and_splits(submission: Submission):
    return (*phase_script_and_splits(submission.phase), submission_metadata(submission))


def _evaluate(
    submission: Submission, limits: Limits, *, submission_file: Path | None = None
) -> EvaluationRecord:
    phase = submission.phase
    script, splits, metadata = _db_retry(
        "reading the script", lambda: _script_and_splits(submission)
    )
    if script is None:
        raise RuntimeError(f"challenge {phase.challenge_id} has no evaluation script")
    # Fetched from storage into this machine's cache (checked against the sha256 recorded
    # when they were stored), then linked where evaluate()'s uid can read them.
    annotation = stored(phase.test_annotation, phase.test_annotation_sha256) or os.devnull
    inputs = (annotation, submission_file or stored(submission.input_file, submission.input_sha256))
    with local_files(*inputs) as local, staged(*local) as (annotation_file, input_file):
        outcome = run_in_sandbox(
            script=script,
            annotation_file=annotation_file,
            submission_file=input_file,
            phase_codename=phase.codename,
            splits=splits,
            limits=limits,
            submission_metadata=metadata,
            partial_ok=phase.is_partial_submission_evaluation_enabled,
            cancelled=lambda: _was_cancelled(submission.pk),
        )
    return _record(outcome, submission, script)


def _was_cancelled(submission_id: int) -> bool:
    try:
        return Submission.objects.filter(
            pk=submission_id, status=Submission.Status.CANCELLED
        ).exists()
    except (OperationalError, InterfaceError):
        connection.close()  # asked again in half a second, on a new connection
        return False


def run_in_sandbox(*, script: EvaluationScript, **kwargs) -> Outcome:
    """Through the warm parent of this script version, in the script's own environment
    when it has a requirements.txt."""
    evaluator = get_evaluator(
        f"{script.challenge_id}:{script.version}:{script.sha256}",
        script_root_for(script),
        python=python_for(script),
    )
    return evaluator.run(**kwargs)


def submission_metadata(submission: Submission) -> dict:
    """The kwargs["submission_metadata"] of EvalAI's evaluate() contract."""
    return {
        "id": submission.pk,
        "status": submission.status,
        "participant_team": submission.team_id,
        "participant_team_name": submission.team.name,
        "method_name": submission.method_name,
        "method_description": submission.method_description,
        "project_url": submission.project_url,
        "publication_url": submission.publication_url,
        "is_public": submission.is_public,
        "submitted_at": submission.submitted_at.isoformat(),
        "challenge_phase": submission.phase_id,
        "created_by": submission.created_by_id,
        "meta_attributes": submission.meta_attributes,
        "attempt": submission.attempt,
    }


def _record(outcome: Outcome, submission: Submission, script: EvaluationScript) -> EvaluationRecord:
    parsed = outcome.parsed
    return EvaluationRecord(
        ok=outcome.ok,
        scores=parsed.scores if parsed else {},
        missing_splits=parsed.missing_splits if parsed else [],
        failure_kind=outcome.failure,
        failure_message=outcome.message,
        traceback=outcome.traceback,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        submission_result=parsed.submission_result if parsed else None,
        submission_metadata=parsed.submission_metadata if parsed else None,
        hidden_splits=parsed.hidden_splits if parsed else [],
        wall_time_s=outcome.wall_s,
        execution={
            **runtime_versions(),
            "wall_s": round(outcome.wall_s, 4),
            "cpu_s": round(outcome.cpu_s, 4),
            "evaluate_cpu_s": round(outcome.evaluate_cpu_s, 4),
            "peak_memory_kb": outcome.max_rss_kb,
            "worker": submission.worker,
            "submission_sha256": submission.input_sha256,
            "script_sha256": script.sha256,
            "script_version": script.version,
            "annotation_sha256": submission.phase.test_annotation_sha256,
            "sandbox": outcome.sandbox,
        },
        script_id=script.pk,
        annotation_sha256=submission.phase.test_annotation_sha256,
    )

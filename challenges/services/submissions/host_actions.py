"""What a challenge's hosts (and a submission's team) do to submissions after intake:
cancel, re-run, re-score a phase."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import require_challenge_host
from challenges.models import AuditEvent, ChallengePhase, Submission, SubmissionResult
from challenges.services.audit import audit_record
from challenges.services.leaderboard_refresh import leaderboard_refresh
from challenges.services.submissions.errors import SubmissionRefused
from challenges.services.submissions.transitions import (
    Status,
    submission_enqueue,
    submission_transition,
)
from challenges.submission_access import require_may_cancel


def submission_cancel(*, submission: Submission, user) -> bool:
    """Cancel a submission that has not finished. The owner's team or a host may."""
    require_may_cancel(user, submission)
    done = submission_transition(
        submission_id=submission.pk,
        step="cancel",
        to=Status.CANCELLED,
        finished_at=timezone.now(),
        deadline_at=None,
        failure_message="Cancelled.",
    )
    if not done:
        raise SubmissionRefused(
            _("Submission %(pk)s has already ended; it cannot be cancelled.")
            % {"pk": submission.pk}
        )
    return True


def submission_rerun(
    *, submission: Submission, user, refresh_leaderboard: bool = True
) -> Submission:
    """Host re-run: a new attempt; the old attempt's results stop counting at once.

    `refresh_leaderboard=False` leaves the team's entries to the caller, which must
    rebuild them (`phase_rescore` rebuilds the phase once instead of once per rerun).
    """
    require_challenge_host(user, submission.phase.challenge, _("re-run submissions"))
    if submission.input_purged_at is not None:
        raise SubmissionRefused(
            _(
                "Submission %(pk)s failed and its file was removed on %(input_purged_at)s (FAILED_SUBMISSION_RETENTION_DAYS); it cannot run again."
            )
            % {
                "pk": submission.pk,
                "input_purged_at": format(submission.input_purged_at, "%Y-%m-%d"),
            }
        )
    with transaction.atomic():
        updated = submission_transition(
            submission_id=submission.pk,
            step="rerun",
            to=Status.SUBMITTED,
            attempt=F("attempt") + 1,
            queued_at=None,
            started_at=None,
            finished_at=None,
            worker="",
            failure_kind="",
            failure_message="",
            traceback="",
        )
        if not updated:
            raise SubmissionRefused(
                _("Submission %(pk)s is still in progress; re-run it when it has ended.")
                % {"pk": submission.pk}
            )
        SubmissionResult.objects.filter(submission=submission, is_active=True).update(
            is_active=False
        )
        if refresh_leaderboard:
            leaderboard_refresh(phase=submission.phase, team_ids=[submission.team_id])
            # A phase re-score records itself once, not once per submission.
            audit_record(
                actor=user,
                action=AuditEvent.Action.SUBMISSION_RERUN,
                challenge=submission.phase.challenge,
                target=f"submission {submission.pk}",
                attempt=submission.attempt + 1,
            )
        # The challenge is read already (the host check): a phase re-score enqueues each
        # of its submissions without reading it again.
        challenge = submission.phase.challenge
        transaction.on_commit(
            lambda: submission_enqueue(submission_id=submission.pk, challenge=challenge)
        )
    submission.refresh_from_db()
    return submission


def phase_rescore(*, phase: ChallengePhase, user) -> int:
    """Re-run every ended submission of a phase (after a new script version). Returns how many."""
    require_challenge_host(user, phase.challenge, _("re-score a phase"))
    ids = list(
        Submission.objects.filter(
            phase=phase,
            status__in=(*Submission.RANKED, Status.FAILED),
            input_purged_at__isnull=True,  # nothing left to run
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        for submission in Submission.objects.filter(pk__in=ids).select_related("phase__challenge"):
            submission_rerun(submission=submission, user=user, refresh_leaderboard=False)
        # One rebuild rather than one recomputation per team and submission; in the same
        # transaction, so no reader sees entries of results that no longer count, and
        # enqueued reruns (sent on commit) merge their results into the rebuilt entries.
        leaderboard_refresh(phase=phase)
        audit_record(
            actor=user,
            action=AuditEvent.Action.PHASE_RESCORE,
            challenge=phase.challenge,
            target=f"phase {phase.codename}",
            submissions=len(ids),
        )
    return len(ids)

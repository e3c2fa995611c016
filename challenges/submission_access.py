"""Who may see what of a submission. Hidden splits, logs and host-only metadata are read
only through these functions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext as _

from challenges.access import (
    AccessDenied,
    access_phase_with_participation,
    user_is_challenge_host,
    user_is_team_member,
)
from challenges.failure_text import participant_failure_text
from challenges.leaderboard_access import results_shown_to
from challenges.models import ChallengeParticipation, ChallengePhase, Submission, SubmissionResult
from challenges.selectors import participation_for_user


@dataclass(frozen=True)
class SubmissionView:
    submission: Submission
    is_host: bool
    is_owner: bool

    @property
    def can_see_logs(self) -> bool:
        """stdout and stderr: hosts always; the team only where the host opted in per phase
        (`show_logs_to_participants`, EvalAI's behaviour), since a script's output can quote
        its source, server paths or ground truth. `disable_logs` still wins."""
        if self.is_host:
            return True
        phase = self.submission.phase
        return self.is_owner and phase.show_logs_to_participants and not phase.disable_logs

    def require_logs(self) -> None:
        if not self.can_see_logs:
            raise AccessDenied(
                _(
                    "The hosts do not show logs to participants in this phase; the submission's failure_message says what went wrong."
                )
            )

    @property
    def can_see_traceback(self) -> bool:
        # The traceback is the host's script: its source lines and paths. Hosts only.
        return self.is_host

    @property
    def failure_message(self) -> str:
        if self.is_host:
            return self.submission.failure_message
        return participant_failure_text(self.submission.failure_message)

    @property
    def can_see_host_metadata(self) -> bool:
        return self.is_host

    def visible_results(self) -> list[SubmissionResult]:
        results = self.submission.results.filter(is_active=True).select_related(
            "phase_split__dataset_split", "phase_split__leaderboard"
        )
        return results_shown_to(self.is_host, results, self.submission.phase)


def access_submission(user: AbstractBaseUser | AnonymousUser, submission_id: int) -> SubmissionView:
    """The submission if `user` is on its team or hosts its challenge; DoesNotExist otherwise."""
    if not user.is_authenticated:
        raise Submission.DoesNotExist
    submission = Submission.objects.select_related(
        "phase__challenge", "team", "script", "merged_from_team"
    ).get(pk=submission_id)
    is_host = user_is_challenge_host(user, submission.phase.challenge)
    is_owner = user_is_team_member(user, submission.team)
    if not (is_host or is_owner):
        raise Submission.DoesNotExist
    return SubmissionView(submission, is_host=is_host, is_owner=is_owner)


def require_may_cancel(user: AbstractBaseUser | AnonymousUser, submission: Submission) -> None:
    """The submitting team or the challenge's hosts may cancel a submission."""
    if not (
        user_is_challenge_host(user, submission.phase.challenge)
        or user_is_team_member(user, submission.team)
    ):
        raise AccessDenied(
            _("Only the submitting team or the challenge's hosts can cancel this submission.")
        )


def require_submitting_team(
    user: AbstractBaseUser | AnonymousUser, submission: Submission, action: str
) -> None:
    """Choices about a submission (public, final) are its team's, not the hosts'."""
    if not user_is_team_member(user, submission.team):
        raise AccessDenied(
            _("Only members of the submitting team can %(action)s.") % {"action": action}
        )


@dataclass
class Submitter:
    """Who submits to a phase, resolved once per request by `access_submitter` and handed to
    every service the submission passes through (checks before an upload, the upload, the
    submission), so none of them asks again (Saleor's `fetch_checkout_info`)."""

    user: Any
    phase: ChallengePhase
    is_host: bool
    # The user's team's participation in the phase's challenge. Hosts cannot take part in
    # their own challenge: theirs is None until their first submission makes the host
    # team's (`services.hosting.submitter_participation`, which keeps it here).
    participation: ChallengeParticipation | None

    @property
    def team_id(self) -> int | None:
        return self.participation.team_id if self.participation else None

    @property
    def may_submit(self) -> bool:
        """A team taking part, or a host (who submits as the host team). The phase's own
        rules (open, invited, quotas) are the submission service's."""
        return self.participation is not None or self.is_host

    def for_phase(self, phase: ChallengePhase) -> Submitter:
        """The same submitter for another phase of the challenge: taking part and hosting
        are the challenge's, so nothing is asked again."""
        if phase.challenge_id != self.phase.challenge_id:
            raise ValueError("A submitter is resolved for one challenge; resolve it again.")
        return dataclasses.replace(self, phase=phase)


def access_phase_submitter(
    user: AbstractBaseUser | AnonymousUser, challenge_id: int, *, codename: str
) -> Submitter:
    """`access_submitter(user, access_phase(user, challenge_id, codename=codename),
    related=False)`, the phase and the participation read in one statement where they can
    be (access_phase_with_participation): the v1 upload."""
    phase, participation = access_phase_with_participation(user, challenge_id, codename=codename)
    return Submitter(
        user=user,
        phase=phase,
        is_host=user_is_challenge_host(user, phase.challenge),
        participation=participation,
    )


def access_submitter(
    user: AbstractBaseUser | AnonymousUser, phase: ChallengePhase, *, related: bool = True
) -> Submitter:
    """The submitter `user` is for `phase` (from `access_phase`, which checked they may see
    it). `related=False`: the participation without its team and terms joined, for callers
    that read only its ids (the v1 upload, before its body is parsed)."""
    return Submitter(
        user=user,
        phase=phase,
        is_host=user_is_challenge_host(user, phase.challenge),
        participation=participation_for_user(user, phase.challenge, related=related),
    )

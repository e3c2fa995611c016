"""What participants and hosts choose about finished work: which submissions show on the
leaderboard (is_public), which are final (Kaggle's picks), which are baselines.

EvalAI's rules for is_public (docs: "Lock Submission Visibility"): when a phase's
`is_submission_public` is true (and its leaderboard is public), every submission is
public and participants cannot hide one; when false (the default), submissions start
private and participants choose. With `is_restricted_to_select_one_submission`, a team
has at most one public submission per phase: making one public makes the previous one
private (EvalAI does the same), and the lock above does not apply.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from challenges.access import require_challenge_host
from challenges.leaderboard_rules import visibility_is_locked
from challenges.models import ChallengeParticipation, Submission
from challenges.services.leaderboard_refresh import RANKED_STATUSES, leaderboard_refresh
from challenges.services.submissions import SubmissionRefused
from challenges.submission_access import require_submitting_team


def _lock_participation(submission: Submission) -> None:
    list(
        ChallengeParticipation.objects.select_for_update()
        .filter(challenge_id=submission.phase.challenge_id, team_id=submission.team_id)
        .values_list("pk")
    )


def _toggle(submission: Submission, **flags: bool) -> None:
    """Write a submission's flags and have its team's entries follow (in the caller's
    transaction): the one place the choices below change what the leaderboard shows."""
    Submission.objects.filter(pk=submission.pk).update(**flags)
    leaderboard_refresh(phase=submission.phase, team_ids=[submission.team_id])


def submission_set_public(*, submission: Submission, user, is_public: bool) -> Submission:
    """Show a submission on the leaderboard or hide it (the submitting team decides)."""
    require_submitting_team(
        user, submission, _("choose whether this submission shows on the leaderboard")
    )
    phase = submission.phase
    if visibility_is_locked(phase) and not is_public:
        raise SubmissionRefused(
            _(
                "Phase %(codename)s shows every submission on its leaderboard (is_submission_public); submissions cannot be hidden."
            )
            % {"codename": repr(phase.codename)},
            field="is_public",
        )
    with transaction.atomic():
        _lock_participation(submission)
        if is_public and phase.is_restricted_to_select_one_submission:
            Submission.objects.filter(
                phase=phase, team_id=submission.team_id, is_public=True
            ).exclude(pk=submission.pk).update(is_public=False)
        _toggle(submission, is_public=is_public)
    submission.refresh_from_db()
    return submission


def submission_set_final(*, submission: Submission, user, is_final: bool) -> Submission:
    """Pick a finished submission as one of the team's final ones, or unpick it."""
    require_submitting_team(user, submission, _("pick its final submissions"))
    phase = submission.phase
    cap = phase.max_final_submissions
    if not cap:
        raise SubmissionRefused(
            _("Phase %(codename)s has no final picks (max_final_submissions is not set).")
            % {"codename": repr(phase.codename)},
            field="is_final",
        )
    if is_final and submission.status not in RANKED_STATUSES:
        raise SubmissionRefused(
            _("Submission %(pk)s is %(status)s; only finished submissions can be final picks.")
            % {"pk": submission.pk, "status": submission.status},
            field="is_final",
        )
    if is_final and submission.is_late:
        raise SubmissionRefused(
            _(
                "Submission %(id)s was made after phase %(phase)r ended: late submissions "
                "are scored but never ranked, so they cannot be final picks."
            )
            % {"id": submission.pk, "phase": phase.codename},
            field="is_final",
        )
    with transaction.atomic():
        _lock_participation(submission)
        if is_final:
            picked = list(
                Submission.objects.filter(phase=phase, team_id=submission.team_id, is_final=True)
                .exclude(pk=submission.pk)
                .values_list("pk", flat=True)
            )
            if len(picked) >= cap:
                raise SubmissionRefused(
                    _(
                        "Your team has already picked %(count)s final submission(s) in phase %(codename)s, the most allowed (%(cap)s): unpick one of %(names)s first."
                    )
                    % {
                        "count": len(picked),
                        "codename": repr(phase.codename),
                        "cap": cap,
                        "names": ", ".join(map(str, sorted(picked))),
                    },
                    field="is_final",
                )
        _toggle(submission, is_final=is_final)
    submission.refresh_from_db()
    return submission


def submission_set_baseline(*, submission: Submission, user, is_baseline: bool) -> Submission:
    """Hosts mark a submission as a baseline: it always shows, marked, without a rank."""
    require_challenge_host(user, submission.phase.challenge, _("mark baselines"))
    with transaction.atomic():
        _toggle(submission, is_baseline=is_baseline)
    submission.refresh_from_db()
    return submission

"""Host-side leaderboard actions: the hosts' own team, split visibility, bans."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import require_challenge_host
from challenges.leaderboard_access import may_reveal
from challenges.models import (
    AuditEvent,
    Challenge,
    ChallengeParticipation,
    ChallengePhaseSplit,
    ParticipantTeam,
)
from challenges.selectors import host_team_participation
from challenges.services.audit import audit_record
from challenges.services.leaderboard_refresh import leaderboard_refresh
from challenges.services.participation import TEAM_NAME_MAX_LENGTH, ParticipationError
from challenges.submission_access import Submitter


def submitter_participation(submitter: Submitter) -> ChallengeParticipation | None:
    """Whom a submission is for: the user's team's participation, else, for the
    challenge's hosts, the host team's (made on first use, then kept on the submitter so
    the rest of the request does not ask again). None: they may not submit."""
    if submitter.participation is None and submitter.is_host:
        submitter.participation = host_participation_for(
            challenge=submitter.phase.challenge, user=submitter.user, is_host=True
        )
    return submitter.participation


def host_participation_for(
    *, challenge: Challenge, user, is_host: bool | None = None
) -> ChallengeParticipation:
    """The participation the hosts submit with (baselines, trial runs); made on first use.

    Hosts cannot take part in their own challenge as participants (participation
    services refuse it), so they get a team of their own, flagged `is_host_team`, with
    no members: membership would make hosts participants everywhere that team goes. Its
    submissions stay off the public ranking unless marked as baselines. `is_host`: the
    caller's answer of `user_is_challenge_host`, when it has one.
    """
    require_challenge_host(user, challenge, _("submit as the host team"), is_host=is_host)
    with transaction.atomic():
        # One host team per challenge even when two hosts submit at once.
        Challenge.objects.select_for_update().filter(pk=challenge.pk).exists()
        existing = host_team_participation(challenge)
        if existing is not None:
            return existing
        base = f"{challenge.host_team.name} (hosts)"
        name = base[:TEAM_NAME_MAX_LENGTH]
        if ParticipantTeam.objects.filter(name__iexact=name).exists():
            suffix = f" #{challenge.pk}"
            name = base[: TEAM_NAME_MAX_LENGTH - len(suffix)] + suffix
        team = ParticipantTeam.objects.create(name=name, created_by=user)
        return ChallengeParticipation.objects.create(
            challenge=challenge, team=team, accepted_terms_by=user, is_host_team=True
        )


def phase_split_set_visibility(
    *, phase_split: ChallengePhaseSplit, user, visibility: int
) -> ChallengePhaseSplit:
    """Hosts flip a split between host only (1), host and the submitting team (2) and
    public (3) at any time. Entries of every scope are kept, so nothing is recomputed."""
    require_challenge_host(
        user, phase_split.phase.challenge, _("change a leaderboard's visibility")
    )
    if visibility not in ChallengePhaseSplit.Visibility.values:
        raise ParticipationError(
            _(
                "visibility must be 1 (host only), 2 (host and the submitting team) or 3 (public), not %(visibility)s."
            )
            % {"visibility": repr(visibility)}
        )
    with transaction.atomic():
        before = phase_split.visibility
        ChallengePhaseSplit.objects.filter(pk=phase_split.pk).update(visibility=visibility)
        audit_record(
            actor=user,
            action=AuditEvent.Action.SPLIT_VISIBILITY,
            challenge=phase_split.phase.challenge,
            target=f"{phase_split.phase.codename}/{phase_split.dataset_split.codename}",
            before=before,
            after=visibility,
        )
    phase_split.visibility = visibility
    return phase_split


def phase_split_reveal(*, phase_split: ChallengePhaseSplit, user) -> ChallengePhaseSplit:
    """A host reveals a private split after its phase ended (`private_splits_reveal:
    by_host`): everyone then sees it ranked by final picks, with the shake-up."""
    require_challenge_host(user, phase_split.phase.challenge, _("reveal a private leaderboard"))
    if not may_reveal(phase_split):
        raise ParticipationError(
            _(
                "Only a host-only split of a phase with private_splits_reveal: by_host can be "
                "revealed, once, after the phase ends."
            )
        )
    now = timezone.now()
    with transaction.atomic():
        ChallengePhaseSplit.objects.filter(pk=phase_split.pk).update(revealed_at=now)
        audit_record(
            actor=user,
            action=AuditEvent.Action.SPLIT_VISIBILITY,
            challenge=phase_split.phase.challenge,
            target=f"{phase_split.phase.codename}/{phase_split.dataset_split.codename}",
            revealed=True,
        )
    phase_split.revealed_at = now
    return phase_split


def participation_set_banned(
    *, participation: ChallengeParticipation, banned: bool, reason: str = "", by=None
) -> ChallengeParticipation:
    """Ban a team from a challenge's leaderboards (admin action), or lift the ban.

    The team's entries go at once; its submissions stay, visible to hosts.
    """
    with transaction.atomic():
        ChallengeParticipation.objects.filter(pk=participation.pk).update(
            is_banned=banned, banned_reason=reason[:500] if banned else ""
        )
        audit_record(
            actor=by,
            action=AuditEvent.Action.TEAM_BAN if banned else AuditEvent.Action.TEAM_UNBAN,
            challenge=participation.challenge,
            target=f"team {participation.team_id} ({participation.team.name})",
            reason=reason[:500],
        )
        for phase in participation.challenge.phases.all():
            leaderboard_refresh(phase=phase, team_ids=[participation.team_id])
    participation.refresh_from_db()
    return participation

"""Participation reads: querysets with their joins already applied."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, Q, QuerySet

from challenges.models import Challenge, ChallengeParticipation, ParticipantTeam, TeamMerge
from challenges.prepared import Prepared


def participation_for_user(
    user: AbstractBaseUser | AnonymousUser, challenge: Challenge, *, related: bool = True
) -> ChallengeParticipation | None:
    """The participation of the user's team in `challenge`, or None.

    A user is in at most one team per challenge (the participation services refuse
    anything else), so there is at most one row; ordering makes any legacy duplicate
    resolve the same way every time. `related=False`: without its team and the user who
    accepted the terms joined, for callers that read only its ids (every upload asks).
    """
    if not user.is_authenticated:
        return None
    if related:
        rows = _participations(challenge_id=challenge.pk, user_id=user.pk)
        participation = rows.select_related("team", "accepted_terms_by").first()
    else:
        found = _PARTICIPATION(challenge.pk, user.pk)
        participation = found[0] if found else None
    if participation is not None:
        # The caller's row, not the same one joined again (a wide row, read on every upload);
        # it also keeps what access_challenge read about the user (viewer_is_host).
        participation.challenge = challenge
    return participation


def _participations(*, challenge_id: int, user_id: int) -> QuerySet[ChallengeParticipation]:
    return ChallengeParticipation.objects.filter(
        challenge_id=challenge_id, team__memberships__user_id=user_id
    ).order_by("pk")


# Compiled once: every upload asks (challenges.prepared).
_PARTICIPATION = Prepared(
    lambda challenge_id, user_id: _participations(challenge_id=challenge_id, user_id=user_id)[:1],
    int,
    int,
)


def host_team_participation(challenge: Challenge) -> ChallengeParticipation | None:
    """The hosts' own team in `challenge` (baselines, trial runs), if a host has submitted."""
    return (
        ChallengeParticipation.objects.select_related("team")
        .filter(challenge=challenge, is_host_team=True)
        .order_by("pk")
        .first()
    )


def teams_of_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[ParticipantTeam]:
    """The participant teams `user` belongs to, with members (by username) and participations."""
    if not user.is_authenticated:
        return ParticipantTeam.objects.none()
    return (
        ParticipantTeam.objects.filter(memberships__user=user)
        .select_related("created_by")
        .prefetch_related(
            Prefetch("members", queryset=get_user_model().objects.order_by("username")),
            Prefetch("participations", queryset=ChallengeParticipation.objects.order_by("pk")),
        )
        .order_by("name")
    )


def team_merges_of(challenge: Challenge, team_id: int | None = None) -> QuerySet[TeamMerge]:
    """A challenge's merge requests, newest first; `team_id`: those the team sent or got."""
    rows = TeamMerge.objects.filter(challenge=challenge).select_related(
        "requesting_team", "receiving_team", "requested_by", "decided_by"
    )
    if team_id is not None:
        rows = rows.filter(Q(requesting_team_id=team_id) | Q(receiving_team_id=team_id))
    return rows.order_by("-requested_at", "-pk")


def teams_taking_part(challenge: Challenge, *, exclude_team_id: int | None = None):
    """The participant teams of a challenge a team could ask to merge (not hosts, not banned)."""
    rows = ParticipantTeam.objects.filter(
        participations__challenge=challenge,
        participations__is_host_team=False,
        participations__is_banned=False,
    )
    if exclude_team_id is not None:
        rows = rows.exclude(pk=exclude_team_id)
    return rows.order_by("name")

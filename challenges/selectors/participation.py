"""Participation reads: querysets with their joins already applied."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, QuerySet

from challenges.models import Challenge, ChallengeParticipation, ParticipantTeam


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
    rows = ChallengeParticipation.objects.filter(challenge=challenge, team__memberships__user=user)
    if related:
        rows = rows.select_related("team", "accepted_terms_by")
    participation = rows.order_by("pk").first()
    if participation is not None:
        # The caller's row, not the same one joined again (a wide row, read on every upload);
        # it also keeps what access_challenge read about the user (viewer_is_host).
        participation.challenge = challenge
    return participation


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

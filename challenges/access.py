"""Every access decision about challenges goes through these functions (and is tested)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet, Value

from challenges.models import (
    Challenge,
    ChallengePhase,
    HostTeam,
    HostTeamMember,
    ParticipantTeam,
    ParticipantTeamMember,
)


class AccessDenied(Exception):
    """The user may not do this. The message says why and is safe to show them."""


def user_is_host_team_member(user: AbstractBaseUser | AnonymousUser, team: HostTeam) -> bool:
    if not user.is_authenticated:
        return False
    return HostTeamMember.objects.filter(team=team, user=user).exists()


def user_is_challenge_host(user: AbstractBaseUser | AnonymousUser, challenge: Challenge) -> bool:
    """Hosts of the challenge's team, and staff (admins) who review challenges."""
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    # Read with the challenge when it came from challenges_visible_to(user): the same
    # decision, asked again in one request (the view, then the service), costs no query.
    known = challenge.__dict__.get("viewer_is_host")
    if known is not None and challenge.__dict__.get("viewer_id") == user.pk:
        return bool(known)
    return HostTeamMember.objects.filter(team_id=challenge.host_team_id, user=user).exists()


def challenges_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Challenge]:
    """Participants see approved and published challenges; hosts also see their own; staff all."""
    qs = Challenge.objects.select_related("host_team")
    if user.is_authenticated and user.is_staff:
        return qs
    public = Q(approved_by_admin=True, published=True)
    if user.is_authenticated:
        hosts = HostTeamMember.objects.filter(team_id=OuterRef("host_team_id"), user=user)
        return qs.annotate(viewer_is_host=Exists(hosts), viewer_id=Value(user.pk)).filter(
            public | Q(viewer_is_host=True)
        )
    return qs.filter(public)


def access_challenge(user: AbstractBaseUser | AnonymousUser, challenge_id: int) -> Challenge:
    """The challenge if `user` may see it; Challenge.DoesNotExist otherwise (no existence leak)."""
    return challenges_visible_to(user).get(pk=challenge_id)


def access_challenge_as_host(
    user: AbstractBaseUser | AnonymousUser, challenge_id: int
) -> Challenge:
    challenge = access_challenge(user, challenge_id)
    if not user_is_challenge_host(user, challenge):
        raise AccessDenied("Only hosts of this challenge may do this.")
    return challenge


def user_is_team_member(user: AbstractBaseUser | AnonymousUser, team: ParticipantTeam) -> bool:
    """Whether `user` belongs to the participant team (staff get no exemption)."""
    if not user.is_authenticated:
        return False
    return ParticipantTeamMember.objects.filter(team=team, user=user).exists()


def phases_visible_to(
    user: AbstractBaseUser | AnonymousUser, challenge: Challenge
) -> QuerySet[ChallengePhase]:
    """Phases of a challenge `user` may see: hidden ones (not `is_public`) only to hosts."""
    qs = ChallengePhase.objects.filter(challenge=challenge).select_related("challenge")
    if user_is_challenge_host(user, challenge):
        return qs
    return qs.filter(is_public=True)


def access_phase(
    user: AbstractBaseUser | AnonymousUser,
    challenge_id: int,
    *,
    codename: str | None = None,
    phase_id: int | None = None,
) -> ChallengePhase:
    """A phase of a challenge `user` may see, by codename or id; DoesNotExist otherwise."""
    challenge = access_challenge(user, challenge_id)
    lookup = {"codename": codename} if phase_id is None else {"pk": phase_id}
    phase = phases_visible_to(user, challenge).select_related("tournament").get(**lookup)
    phase.challenge = challenge  # the same row, with what was read about the user
    return phase

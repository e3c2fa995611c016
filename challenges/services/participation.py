"""Participant teams and their participation in challenges.

Locking: a service that can break a team rule locks the team's row first, then the
rows of the users involved, in primary-key order, and always in that order so two
services never wait on each other in a cycle. The team lock serialises joins with
participations of the same team (member limits); the user locks serialise everything
that could put one user in two teams of the same challenge (a join of that user and
a participation of any of their teams).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import require_team_member, user_is_team_member
from challenges.deadlines import entry_closed, when
from challenges.models import (
    Challenge,
    ChallengeParticipation,
    HostTeamMember,
    ParticipantTeam,
    ParticipantTeamMember,
)
from challenges.models.participation import new_invitation_code
from challenges.text_checks import bidi_problem

TEAM_NAME_MAX_LENGTH = ParticipantTeam._meta.get_field("name").max_length


class ParticipationError(ValueError):
    """A rule of teams or participation was broken. The message says which, and what to do."""


# Teams


def participant_team_create(*, name: str, creator: AbstractBaseUser) -> ParticipantTeam:
    name = (name or "").strip()
    if not name:
        raise ParticipationError(_("A team needs a name."))
    problem = bidi_problem(name, what=_("Team name"))
    if problem:
        raise ParticipationError(problem)
    if len(name) > TEAM_NAME_MAX_LENGTH:
        raise ParticipationError(
            _("Team names are at most %(limit)d characters; this one has %(length)d.")
            % {"limit": TEAM_NAME_MAX_LENGTH, "length": len(name)}
        )
    # Case-insensitive, so leaderboards never show two teams that look the same.
    if ParticipantTeam.objects.filter(name__iexact=name).exists():
        raise _name_taken(name)
    try:
        with transaction.atomic():
            team = ParticipantTeam.objects.create(name=name, created_by=creator)
            ParticipantTeamMember.objects.create(team=team, user=creator)
    except IntegrityError:
        # Another request took the name between the check above and the insert.
        raise _name_taken(name) from None
    return team


def participant_team_join(*, user: AbstractBaseUser, invitation_code: str) -> ParticipantTeam:
    """Join the team holding `invitation_code`. Joining a team one is in already is a no-op.

    The team's participations in challenges that have not ended must stay valid with
    the new member: member limits, one team per user per challenge, hosts and email
    domains. Ended challenges no longer constrain the team.
    """
    code = (invitation_code or "").strip()
    team_id = (
        ParticipantTeam.objects.filter(invitation_code=code).values_list("pk", flat=True).first()
        if code
        else None
    )
    if team_id is None:
        raise _unknown_code()
    with transaction.atomic():
        team = _lock_team(team_id)
        if team.invitation_code != code:
            # A member rotated the code while we waited for the lock.
            raise _unknown_code()
        _lock_users([user.pk])
        if user_is_team_member(user, team):
            return team
        size = team.memberships.count() + 1
        for challenge in _ongoing_challenges_of(team):
            _check_entry_open(challenge, joining=team)
            _check_team_size(challenge, team, size, joining=True)
            _check_one_team_per_challenge(challenge, team, [user], actor=user)
            _check_members_eligible(challenge, [user], actor=user)
        ParticipantTeamMember.objects.create(team=team, user=user)
    return team


def participant_team_rotate_code(
    *, team: ParticipantTeam, user: AbstractBaseUser
) -> ParticipantTeam:
    """Give the team a new invitation code; the old one stops working."""
    require_team_member(
        user,
        team,
        _(
            "You are not a member of the team %(team)r; only its members can change "
            "its invitation code."
        )
        % {"team": team.name},
    )
    team.invitation_code = new_invitation_code()
    team.save(update_fields=["invitation_code"])
    return team


def participant_team_leave(*, team: ParticipantTeam, user: AbstractBaseUser) -> None:
    """Leave a team. A team that no one is in and that never took part in a challenge is deleted.

    Members of a team taking part in a challenge that has not ended cannot leave:
    otherwise one could submit with a team, leave and submit again with another team,
    getting round the quotas and the one-team-per-challenge rule.
    """
    with transaction.atomic():
        team = _lock_team(team.pk)
        require_team_member(user, team)
        ongoing = _ongoing_challenges_of(team)
        if ongoing:
            raise ParticipationError(
                _(
                    "The team %(team)r takes part in %(challenge)r, which has not "
                    "ended: its members cannot leave until the challenge ends."
                )
                % {"team": team.name, "challenge": ongoing[0].title}
            )
        ParticipantTeamMember.objects.filter(team=team, user=user).delete()
        if not team.memberships.exists() and not team.participations.exists():
            team.delete()


# Participation


def challenge_participate(
    *,
    challenge: Challenge,
    team: ParticipantTeam,
    user: AbstractBaseUser,
    accept_terms: bool,
) -> ChallengeParticipation:
    """Enter `team` in `challenge` on behalf of `user`, a member who accepts the terms.

    If the team already takes part, its participation is returned unchanged (the
    terms were accepted then, and closed registration does not shut a team out).
    """
    if not (challenge.approved_by_admin and challenge.published):
        # Same answer as for a challenge that does not exist: no existence leak.
        raise Challenge.DoesNotExist("Challenge matching query does not exist.")
    with transaction.atomic():
        team = _lock_team(team.pk)
        require_team_member(
            user,
            team,
            _(
                "You are not a member of the team %(team)r; only its members can enter it "
                "in a challenge."
            )
            % {"team": team.name},
        )
        existing = ChallengeParticipation.objects.filter(challenge=challenge, team=team).first()
        if existing is not None:
            return existing
        if accept_terms is not True:
            raise ParticipationError(
                _(
                    "To take part in %(challenge)r you must accept its terms and conditions: "
                    "read them on the challenge page, then send accept_terms: true."
                )
                % {"challenge": challenge.title}
            )
        if not challenge.is_registration_open:
            raise ParticipationError(
                _("Registration for %(challenge)r is closed: the host is not accepting new teams.")
                % {"challenge": challenge.title}
            )
        if challenge.end_date <= timezone.now():
            raise ParticipationError(
                _("%(challenge)r ended on %(end)s; it no longer accepts teams.")
                % {"challenge": challenge.title, "end": when(challenge.end_date)}
            )
        _check_entry_open(challenge)
        members = _lock_users(team.memberships.values_list("user_id", flat=True))
        _check_members_eligible(challenge, members, actor=user)
        _check_one_team_per_challenge(challenge, team, members, actor=user)
        _check_team_size(challenge, team, len(members), joining=False)
        return ChallengeParticipation.objects.create(
            challenge=challenge, team=team, accepted_terms_by=user
        )


# Email domains (pure)


def normalise_domain(domain: str) -> str:
    return str(domain).strip().lower().lstrip("@").strip(".")


def domain_matches(domain: str, rule: str) -> bool:
    """`domain` is `rule` or one of its subdomains (never a look-alike: evilexample.org)."""
    domain, rule = normalise_domain(domain), normalise_domain(rule)
    return bool(rule) and (domain == rule or domain.endswith("." + rule))


def email_domain(email: str) -> str:
    return normalise_domain(email.rpartition("@")[2]) if "@" in (email or "") else ""


def site_email_refusal(email: str) -> str:
    """Why this site (ALLOWED_EMAIL_DOMAINS) does not let `email` sign up or take part;
    empty when it does. The same matching as a challenge's allowed_email_domains."""
    allowed = [normalise_domain(d) for d in settings.ALLOWED_EMAIL_DOMAINS if d]
    if not allowed or any(domain_matches(email_domain(email), rule) for rule in allowed):
        return ""
    return _(
        "This site is open only to email addresses at %(domains)s (or their subdomains); "
        "%(email)s is not one of them. Use your organisation's address."
    ) % {"domains": _listed(allowed), "email": email or _("an account without an address")}


# Rules shared by joining and participating


def _check_entry_open(challenge: Challenge, *, joining: ParticipantTeam | None = None) -> None:
    """Kaggle's entry deadline: no new team, and no one joins a team taking part, after it."""
    if not entry_closed(challenge):
        return
    values = {"challenge": challenge.title, "deadline": when(challenge.entry_deadline)}
    if joining is not None:
        values["team"] = joining.name
        raise ParticipationError(
            _(
                "The team %(team)r takes part in %(challenge)r, whose entry deadline passed "
                "on %(deadline)s: no one joins its teams any more."
            )
            % values
        )
    raise ParticipationError(
        _(
            "The entry deadline of %(challenge)r passed on %(deadline)s: it no longer "
            "accepts new teams."
        )
        % values
    )


def _check_team_size(
    challenge: Challenge, team: ParticipantTeam, size: int, *, joining: bool
) -> None:
    limit = challenge.max_team_members
    if not limit or size <= limit:
        return
    if joining:
        raise ParticipationError(
            _(
                "The team %(team)r takes part in %(challenge)r, which allows at most "
                "%(limit)d members per team, and is full (%(size)d members). Join another team "
                "or create one."
            )
            % {"team": team.name, "challenge": challenge.title, "limit": limit, "size": size - 1}
        )
    raise ParticipationError(
        _(
            "%(challenge)r allows at most %(limit)d members per team; %(team)r has "
            "%(size)d. Take part with a smaller team."
        )
        % {"challenge": challenge.title, "limit": limit, "team": team.name, "size": size}
    )


def _check_one_team_per_challenge(
    challenge: Challenge,
    team: ParticipantTeam,
    users: Sequence[AbstractBaseUser],
    *,
    actor: AbstractBaseUser,
) -> None:
    clash = (
        ParticipantTeamMember.objects.filter(
            user__in=users, team__participations__challenge=challenge
        )
        .exclude(team=team)
        .select_related("team", "user")
        .order_by("user__username")
        .first()
    )
    if clash is None:
        return
    raise ParticipationError(
        (
            _(
                "You are already in the team %(team)r, which takes part in %(challenge)r: "
                "a user can be in only one team per challenge."
            )
            if clash.user.pk == actor.pk
            else _(
                "Team member %(member)r is already in the team %(team)r, which takes part in "
                "%(challenge)r: a user can be in only one team per challenge."
            )
        )
        % {
            "member": clash.user.get_username(),
            "team": clash.team.name,
            "challenge": challenge.title,
        }
    )


def _check_members_eligible(
    challenge: Challenge, users: Sequence[AbstractBaseUser], *, actor: AbstractBaseUser
) -> None:
    """Hosts of the challenge and users outside its email domains cannot take part."""
    hosts = set(
        HostTeamMember.objects.filter(team_id=challenge.host_team_id, user__in=users).values_list(
            "user_id", flat=True
        )
    )
    allowed = [normalise_domain(d) for d in challenge.allowed_email_domains or [] if d]
    blocked = [normalise_domain(d) for d in challenge.blocked_email_domains or [] if d]
    for member in sorted(users, key=lambda u: u.get_username()):
        if member.pk in hosts:
            raise ParticipationError(
                (
                    _(
                        "You are a host of %(challenge)r: hosts cannot take part in their own "
                        "challenge."
                    )
                    if member.pk == actor.pk
                    else _(
                        "Team member %(member)r is a host of %(challenge)r: hosts cannot take "
                        "part in their own challenge."
                    )
                )
                % {"member": member.get_username(), "challenge": challenge.title}
            )
        domain = email_domain(member.email)
        if site_email_refusal(member.email):
            raise ParticipationError(
                _(
                    "This site is open only to email addresses at %(domains)s (or their "
                    "subdomains); %(whose)s address is not. Change the account's email "
                    "address or take part with another team."
                )
                % {
                    "domains": _listed(settings.ALLOWED_EMAIL_DOMAINS),
                    "whose": _whose(member, actor),
                }
            )
        if allowed and not any(domain_matches(domain, rule) for rule in allowed):
            raise ParticipationError(
                _(
                    "%(challenge)r is open only to email addresses at %(domains)s "
                    "(or their subdomains); %(whose)s address is not. "
                    "Change the account's email address or take part with another team."
                )
                % {
                    "challenge": challenge.title,
                    "domains": _listed(allowed),
                    "whose": _whose(member, actor),
                }
            )
        if any(domain_matches(domain, rule) for rule in blocked):
            raise ParticipationError(
                _(
                    "%(challenge)r does not accept email addresses at %(domains)s "
                    "(or their subdomains); %(whose)s address is at one of them."
                )
                % {
                    "challenge": challenge.title,
                    "domains": _listed(blocked),
                    "whose": _whose(member, actor),
                }
            )


# Helpers


def _lock_team(team_id: int) -> ParticipantTeam:
    return ParticipantTeam.objects.select_for_update().get(pk=team_id)


def _lock_users(user_ids: Iterable[int]) -> list[AbstractBaseUser]:
    # Locked in primary-key order, the same order everywhere, so no deadlock.
    return list(
        get_user_model().objects.select_for_update().filter(pk__in=list(user_ids)).order_by("pk")
    )


def _ongoing_challenges_of(team: ParticipantTeam) -> list[Challenge]:
    return list(
        Challenge.objects.filter(participations__team=team, end_date__gt=timezone.now()).order_by(
            "pk"
        )
    )


def _name_taken(name: str) -> ParticipationError:
    return ParticipationError(
        _("A team named %(name)r exists already: choose another name.") % {"name": name}
    )


def _unknown_code() -> ParticipationError:
    return ParticipationError(
        _(
            "No team has this invitation code. Ask a member of the team for the current code "
            "(members can change it, which retires the old one)."
        )
    )


def _whose(user: AbstractBaseUser, actor: AbstractBaseUser) -> str:
    if user.pk == actor.pk:
        return _("your")
    return _("team member %(member)r's") % {"member": user.get_username()}


def _listed(domains: Sequence[str]) -> str:
    return ", ".join(domains)

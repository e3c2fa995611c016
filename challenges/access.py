"""Every access decision about challenges goes through these functions (and is tested)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ObjectDoesNotExist
from django.db import connections, router
from django.db.models import Exists, F, JSONField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import JSONObject
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from challenges.ids import is_id
from challenges.models import (
    Challenge,
    ChallengeParticipation,
    ChallengePhase,
    HostTeam,
    HostTeamMember,
    ParticipantTeam,
    ParticipantTeamMember,
    TeamMerge,
)
from challenges.prepared import Prepared
from challenges.selectors import participation_for_user


class AccessDenied(Exception):
    """The user may not do this. The message says why and is safe to show them."""


class NotFoundWithChoices(ObjectDoesNotExist):
    """No phase or split by that name that the reader may see (a hidden one answers the
    same), with the names they may use: `field` ("phase", "split") and `choices`."""

    def __init__(self, message: str, *, field: str, choices: list[str]) -> None:
        super().__init__(message)
        self.field = field
        self.choices = choices


class UnknownPhase(NotFoundWithChoices, ChallengePhase.DoesNotExist):
    pass


def unknown_phase(
    user: AbstractBaseUser | AnonymousUser, challenge: Challenge, asked: Any
) -> UnknownPhase:
    codenames = list(
        _visible_phases(user, challenge).order_by("pk").values_list("codename", flat=True)
    )
    return UnknownPhase(
        _("Challenge %(challenge)s has no phase %(asked)s; its phases are: %(choices)s.")
        % {
            "challenge": challenge.pk,
            "asked": repr(str(asked)),
            "choices": ", ".join(codenames) or _("none"),
        },
        field="phase",
        choices=codenames,
    )


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


def _challenge_visibility(
    user: AbstractBaseUser | AnonymousUser, to_challenge: str = ""
) -> tuple[dict[str, Any], Q | None]:
    """The rule of challenges_visible_to for rows that reach their challenge through
    `to_challenge` ("" for challenges, "challenge__" for phases): what to annotate the rows
    with (`viewer_is_host`, whose rows the user sees whatever their state, and who asked),
    and what everyone else sees (None: staff, who see everything)."""
    if user.is_authenticated and user.is_staff:
        return {}, None
    public = _public_challenges(to_challenge)
    if not user.is_authenticated:
        return {}, public
    return _viewer_annotations(user.pk, to_challenge), public


def _public_challenges(to_challenge: str) -> Q:
    return Q(**{f"{to_challenge}approved_by_admin": True, f"{to_challenge}published": True})


_VIEWER_ANNOTATIONS = ("viewer_is_host", "viewer_id")


def _viewer_annotations(user_id: int, to_challenge: str) -> dict[str, Any]:
    hosts = HostTeamMember.objects.filter(
        team_id=OuterRef(f"{to_challenge}host_team_id"), user_id=user_id
    )
    return {"viewer_is_host": Exists(hosts), "viewer_id": Value(user_id)}


def challenges_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Challenge]:
    """Participants see approved and published challenges; hosts also see their own; staff all."""
    qs = Challenge.objects.select_related("host_team")
    annotations, public = _challenge_visibility(user)
    if public is None:
        return qs
    if not annotations:
        return qs.filter(public)
    return qs.annotate(**annotations).filter(public | Q(viewer_is_host=True))


def access_challenge(user: AbstractBaseUser | AnonymousUser, challenge_id: int) -> Challenge:
    """The challenge if `user` may see it; Challenge.DoesNotExist otherwise (no existence leak)."""
    return challenges_visible_to(user).get(pk=challenge_id)


def access_challenge_as_host(
    user: AbstractBaseUser | AnonymousUser, challenge_id: int
) -> Challenge:
    challenge = access_challenge(user, challenge_id)
    if not user_is_challenge_host(user, challenge):
        raise AccessDenied(_("Only hosts of this challenge may do this."))
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
    return _visible_phases(user, challenge).select_related("challenge")


def phases_listed_to(is_host: bool, phases) -> list[ChallengePhase]:
    """The rule of `phases_visible_to` for phases already read (a prefetched list), by a
    reader whose `user_is_challenge_host` answer the caller has."""
    return [p for p in phases if is_host or p.is_public]


def _visible_phases(
    user: AbstractBaseUser | AnonymousUser, challenge: Challenge
) -> QuerySet[ChallengePhase]:
    qs = ChallengePhase.objects.filter(challenge=challenge)
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
    lookup = {"codename": codename} if phase_id is None else {"pk": phase_id}
    by_codename = phase_id is None
    value = codename if by_codename else phase_id
    plain = type(value) is str if by_codename else _int_id(value)
    try:
        if user.is_authenticated and not user.is_staff and _int_id(challenge_id) and plain:
            # A signed-in reader who is not staff, as every upload is: compiled once. (Other
            # values, a numeric text or a huge number, take the ORM's way to their answer.)
            prepared = _MEMBER_PHASE_BY_CODENAME if by_codename else _MEMBER_PHASE_BY_ID
            found = prepared(user.pk, challenge_id, value)
            if not found:
                raise ChallengePhase.DoesNotExist
            phase = found[0]  # (challenge, codename) is unique, as the pk is
            annotated = _VIEWER_ANNOTATIONS
        else:
            annotations, public = _challenge_visibility(user, "challenge__")
            phase = _visible_phase_rows(annotations, public, challenge_id, lookup).get()
            annotated = tuple(annotations)
    except ChallengePhase.DoesNotExist:
        # Which of the two the user may not see decides the exception: read them apart.
        challenge = access_challenge(user, challenge_id)
        try:
            phase = _visible_phases(user, challenge).select_related("tournament").get(**lookup)
        except ChallengePhase.DoesNotExist:
            raise unknown_phase(user, challenge, codename or phase_id) from None
        phase.challenge = challenge
        return phase
    for name in annotated:
        # Where user_is_challenge_host looks for them, as on a row of challenges_visible_to.
        setattr(phase.challenge, name, phase.__dict__.pop(name))
    return phase


def _visible_phase_rows(
    annotations: dict[str, Any], public: Q | None, challenge_id: Any, lookup: dict[str, Any]
) -> QuerySet[ChallengePhase]:
    """The phase and its challenge in one query (every upload asks): the rule of
    challenges_visible_to for the challenge, and that of phases_visible_to for the phase
    (hidden ones only to hosts, who are staff or the annotation's viewer_is_host)."""
    phases = ChallengePhase.objects.select_related("challenge__host_team", "tournament").filter(
        challenge_id=challenge_id, **lookup
    )
    if public is not None:
        # (public challenge or host) and (public phase or host), with the host subquery
        # written once.
        shown = public & Q(is_public=True)
        if annotations:
            phases = phases.annotate(**annotations)
            shown |= Q(viewer_is_host=True)
        phases = phases.filter(shown)
    return phases.order_by()


def _int_id(value: Any) -> bool:
    return type(value) is int and is_id(value)


def _member_phase(field: str) -> Prepared:
    def build(user_id, challenge_id, value):
        annotations = _viewer_annotations(user_id, "challenge__")
        public = _public_challenges("challenge__")
        return _visible_phase_rows(annotations, public, challenge_id, {field: value})

    return Prepared(build, int, int, int if field == "pk" else str)


_MEMBER_PHASE_BY_CODENAME = _member_phase("codename")
_MEMBER_PHASE_BY_ID = _member_phase("pk")


def access_phase_with_participation(
    user: AbstractBaseUser | AnonymousUser, challenge_id: int, *, codename: str
) -> tuple[ChallengePhase, ChallengeParticipation | None]:
    """`access_phase(user, challenge_id, codename=codename)` and the participation
    `participation_for_user(user, phase.challenge, related=False)` reads, without its
    joins: for a signed-in member who is not staff on PostgreSQL (every upload) in one
    statement, the participation's row read as JSON beside the phase; else as those two.
    Refuses as access_phase refuses."""
    if (
        user.is_authenticated
        and not user.is_staff
        and _int_id(challenge_id)
        and type(codename) is str
        and connections[router.db_for_read(ChallengePhase)].vendor == "postgresql"
    ):
        found = _MEMBER_PHASE_AND_PARTICIPATION(user.pk, challenge_id, codename)
        if found:
            phase = found[0]  # (challenge, codename) is unique
            row = phase.__dict__.pop("viewer_participation")
            for name in _VIEWER_ANNOTATIONS:
                setattr(phase.challenge, name, phase.__dict__.pop(name))
            return phase, _participation_from_row(row, phase.challenge)
    phase = access_phase(user, challenge_id, codename=codename)
    return phase, participation_for_user(user, phase.challenge, related=False)


def _participation_columns() -> list[str]:
    return [f.attname for f in ChallengeParticipation._meta.concrete_fields]


def _member_phase_and_participation(user_id, challenge_id, codename):
    annotations = _viewer_annotations(user_id, "challenge__")
    public = _public_challenges("challenge__")
    rows = _visible_phase_rows(annotations, public, challenge_id, {"codename": codename})
    # participation_for_user's row (selectors.participation), as one JSON value.
    theirs = (
        ChallengeParticipation.objects.filter(
            challenge_id=OuterRef("challenge_id"), team__memberships__user_id=user_id
        )
        .order_by("pk")
        .values(row=JSONObject(**{name: F(name) for name in _participation_columns()}))[:1]
    )
    return rows.annotate(viewer_participation=Subquery(theirs, output_field=JSONField()))


_MEMBER_PHASE_AND_PARTICIPATION = Prepared(_member_phase_and_participation, int, int, str)


def _participation_from_row(
    row: dict[str, Any] | None, challenge: Challenge
) -> ChallengeParticipation | None:
    if row is None:
        return None
    fields = ChallengeParticipation._meta.concrete_fields
    # JSON's values as the columns' own: ids and flags as they are, times from ISO text.
    values = [field.to_python(row[field.attname]) for field in fields]
    participation = ChallengeParticipation.from_db(
        router.db_for_read(ChallengeParticipation), [f.attname for f in fields], values
    )
    participation.challenge = challenge
    return participation


# ---------------------------------------------------------------- decisions that refuse
# Services and views ask these instead of testing roles themselves; each raises
# AccessDenied with a message the user can act on.


def require_challenge_host(
    user: AbstractBaseUser | AnonymousUser,
    challenge: Challenge,
    action: str,
    *,
    is_host: bool | None = None,
) -> None:
    """Only the challenge's hosts (and staff) may do `action` ("re-run submissions").
    `is_host`: the answer of `user_is_challenge_host` when the caller already has it."""
    if is_host is None:
        is_host = user_is_challenge_host(user, challenge)
    if not is_host:
        raise AccessDenied(_("Only the challenge's hosts can %(action)s.") % {"action": action})


def require_host_team_member(
    user: AbstractBaseUser | AnonymousUser, team: HostTeam, *, staff_may: bool = False
) -> None:
    """Members of the host team; with `staff_may`, admins too (reviewing bundles)."""
    if staff_may and user.is_authenticated and user.is_staff:
        return
    if not user_is_host_team_member(user, team):
        raise AccessDenied(
            _("You are not a member of the host team %(name)s.") % {"name": repr(team.name)}
        )


def require_team_member(
    user: AbstractBaseUser | AnonymousUser, team: ParticipantTeam, message: str | None = None
) -> None:
    """Only members of the participant team; `message` says what the caller was doing."""
    if not user_is_team_member(user, team):
        raise AccessDenied(
            message or _("You are not a member of the team %(name)s.") % {"name": repr(team.name)}
        )


def require_challenge_of_host_team(challenge: Challenge | None, team: HostTeam) -> None:
    """A host team updates only its own challenges."""
    if challenge is not None and challenge.host_team_id != team.pk:
        raise AccessDenied(
            _("Challenge %(pk)s does not belong to host team %(name)s.")
            % {"pk": challenge.pk, "name": repr(team.name)}
        )


NOT_TAKING_PART = gettext_lazy(
    "Your team does not take part in this challenge: join a team and accept the terms first."
)


def require_participation(participation, message: str = "") -> None:
    """The user's team takes part in the challenge (it accepted the terms)."""
    if participation is None:
        raise AccessDenied(message or _("Your team does not take part in this challenge."))


def require_not_banned(participation) -> None:
    if participation.is_banned:
        raise AccessDenied(_("Your team is banned from this challenge's leaderboards."))


def require_invited(user: AbstractBaseUser | AnonymousUser, phase: ChallengePhase) -> None:
    """A phase with `allowed_email_ids` is open only to those addresses."""
    allowed = [e.lower() for e in phase.allowed_email_ids or []]
    if allowed and (getattr(user, "email", "") or "").lower() not in allowed:
        raise AccessDenied(
            _(
                "Phase %(codename)s is open only to invited participants; your email is not on its list."
            )
            % {"codename": repr(phase.codename)}
        )


def access_host_team(user: AbstractBaseUser | AnonymousUser, ref: str) -> HostTeam:
    """One of the user's host teams, by id or name."""
    teams = HostTeam.objects.filter(memberships__user=user)
    team = teams.filter(pk=int(ref)).first() if is_id(ref) else teams.filter(name=ref).first()
    if team is None:
        raise AccessDenied(_("You are not a member of a host team %(ref)s.") % {"ref": repr(ref)})
    return team


def require_staff(user: AbstractBaseUser | AnonymousUser, action: str) -> None:
    if not (user.is_authenticated and user.is_staff):
        raise AccessDenied(_("Only admins can %(action)s.") % {"action": action})


def access_phase_data(
    user: AbstractBaseUser | AnonymousUser, challenge_id: int, codename: str
) -> ChallengePhase:
    """Like Kaggle: a phase's data is for teams that accepted the terms, and for its hosts."""
    phase = access_phase(user, challenge_id, codename=codename)
    if user_is_challenge_host(user, phase.challenge):
        return phase
    if participation_for_user(user, phase.challenge) is None:
        raise AccessDenied(
            _("Take part in the challenge (accept its terms with your team) to download its data.")
        )
    return phase


# ---------------------------------------------------------------- team merges


def team_leader_id(team: ParticipantTeam) -> int | None:
    """The team's leader (Kaggle's): its creator while a member, else its longest member."""
    members = list(
        ParticipantTeamMember.objects.filter(team=team)
        .order_by("joined_at", "pk")
        .values_list("user_id", flat=True)
    )
    if team.created_by_id in members:
        return team.created_by_id
    return members[0] if members else None


def user_is_team_leader(user: AbstractBaseUser | AnonymousUser, team: ParticipantTeam) -> bool:
    return user.is_authenticated and team_leader_id(team) == user.pk


def require_team_leader(
    user: AbstractBaseUser | AnonymousUser, team: ParticipantTeam, action: str
) -> None:
    """Kaggle's rule: a team's leader sends and answers its merge requests."""
    if not user_is_team_leader(user, team):
        raise AccessDenied(
            _("Only the leader of the team %(team)r (the member who created it) can %(action)s.")
            % {"team": team.name, "action": action}
        )


def access_team_merge(user: AbstractBaseUser | AnonymousUser, merge_id: int) -> TeamMerge:
    """A merge request, for members of either team and the challenge's hosts;
    TeamMerge.DoesNotExist for anyone else (no existence leak)."""
    if not user.is_authenticated:
        raise TeamMerge.DoesNotExist
    merge = TeamMerge.objects.select_related("challenge", "requesting_team", "receiving_team").get(
        pk=merge_id
    )
    if not (
        user_is_team_member(user, merge.requesting_team)
        or user_is_team_member(user, merge.receiving_team)
        or user_is_challenge_host(user, merge.challenge)
    ):
        raise TeamMerge.DoesNotExist
    return merge

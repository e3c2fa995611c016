"""Kaggle's team merges, one challenge at a time.

A team taking part asks another team of the same challenge (`team_merge_request`, sent
by its leader); the receiving team's leader accepts (`team_merge_accept`) or declines,
and a member of the requesting team may withdraw. On acceptance the receiving team
keeps its name and gains the requesting team's members and every submission it made
to the challenge; the requesting team stops taking part (its other challenges are its
own). The rules are checked when asked and again, under the locks, when accepted:

- the merged team within `max_team_members`;
- per phase, the two teams' submissions together no more than one team could have made
  by that day (Kaggle's rule: the daily limit times the UTC days since the phase opened,
  never more than the phase's total limit);
- before the merger deadline (and the challenge's end);
- the incoming members may join the receiving team in its other ongoing challenges
  (size, one team per challenge, hosts and email domains: the rules of a join);
- when accepted, none of the requesting team's submissions still waiting or running.

Locks, in the order every service takes them: the two participations (the quota lock,
so no submission of either team slips in between the count and the move), the two teams,
the merge row, then the users (see challenges.services.participation).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from challenges.access import require_team_leader, require_team_member
from challenges.deadlines import merger_closed, merger_deadline, when
from challenges.models import (
    AuditEvent,
    Challenge,
    ChallengeParticipation,
    ChallengePhase,
    ParticipantTeam,
    ParticipantTeamMember,
    Submission,
    TeamMerge,
)
from challenges.services.audit import audit_record
from challenges.services.leaderboard_refresh import leaderboard_refresh
from challenges.services.participation import (
    ParticipationError,
    _check_members_eligible,
    _check_one_team_per_challenge,
    _check_team_size,
    _lock_users,
    _ongoing_challenges_of,
)
from challenges.services.state_machine import Table, transition, transition_many

Status = TeamMerge.Status

# A request is answered once: every decision leaves `pending` through this table
# (challenges.services.state_machine), so two answers racing cannot both win.
TRANSITIONS: Table = {
    ("accept", Status.ACCEPTED): (Status.PENDING,),
    ("decline", Status.DECLINED): (Status.PENDING,),
    ("withdraw", Status.WITHDRAWN): (Status.PENDING,),
    # Other open requests of two teams that just merged: the requesting team is gone.
    ("supersede", Status.WITHDRAWN): (Status.PENDING,),
}


class MergeRefused(ParticipationError):
    """A merge breaks one of Kaggle's rules; the message gives the numbers."""


# ---------------------------------------------------------------- the rules


@dataclass(frozen=True)
class PhaseAllowance:
    """What one team could have submitted to a phase by a day, and what two teams did."""

    phase: ChallengePhase
    used: int
    per_day: int
    days: int
    allowed: int


def phase_allowances(
    challenge: Challenge, team_ids: list[int], now: dt.datetime
) -> list[PhaseAllowance]:
    """Per phase with submissions: the teams' counted submissions together (failed and
    cancelled ones use no quota) against the daily limit times the UTC days since the
    phase opened, today included, capped by the phase's total limit."""
    counted = Submission.objects.filter(phase__challenge=challenge, team_id__in=team_ids).exclude(
        status__in=Submission.NOT_COUNTED
    )
    today = now.astimezone(dt.UTC).date()
    allowances = []
    for phase in challenge.phases.order_by("bundle_id"):
        rows = counted.filter(phase=phase)
        used = rows.count()
        if not used:
            continue
        opened = phase.start_date or challenge.start_date
        if opened is None:
            opened = rows.order_by("submitted_at").values_list("submitted_at", flat=True)[0]
        days = max((today - opened.astimezone(dt.UTC).date()).days + 1, 1)
        allowed = min(phase.max_submissions_per_day * days, phase.max_submissions)
        allowances.append(PhaseAllowance(phase, used, phase.max_submissions_per_day, days, allowed))
    return allowances


def _check_merge(
    challenge: Challenge,
    requesting: ParticipantTeam,
    receiving: ParticipantTeam,
    now: dt.datetime,
) -> None:
    if merger_closed(challenge, now):
        raise MergeRefused(
            _(
                "The team merger deadline of %(challenge)r passed on %(deadline)s: teams can "
                "no longer merge."
            )
            % {"challenge": challenge.title, "deadline": when(merger_deadline(challenge))}
        )
    members = set(
        ParticipantTeamMember.objects.filter(team__in=[requesting, receiving]).values_list(
            "user_id", flat=True
        )
    )
    limit = challenge.max_team_members
    if limit and len(members) > limit:
        raise MergeRefused(
            _(
                "%(challenge)r allows at most %(limit)d members per team; %(a)r and %(b)r "
                "together have %(size)d. Merge with a smaller team."
            )
            % {
                "challenge": challenge.title,
                "limit": limit,
                "a": requesting.name,
                "b": receiving.name,
                "size": len(members),
            }
        )
    for allowance in phase_allowances(challenge, [requesting.pk, receiving.pk], now):
        if allowance.used > allowance.allowed:
            raise MergeRefused(
                ngettext(
                    "Together %(a)r and %(b)r made %(used)d submissions to phase %(phase)r; one "
                    "team could have made at most %(allowed)d by today (%(per_day)d a day for "
                    "%(days)d day, at most %(total)d in all), so they cannot merge.",
                    "Together %(a)r and %(b)r made %(used)d submissions to phase %(phase)r; one "
                    "team could have made at most %(allowed)d by today (%(per_day)d a day for "
                    "%(days)d days, at most %(total)d in all), so they cannot merge.",
                    allowance.days,
                )
                % {
                    "a": requesting.name,
                    "b": receiving.name,
                    "used": allowance.used,
                    "phase": allowance.phase.codename,
                    "allowed": allowance.allowed,
                    "per_day": allowance.per_day,
                    "days": allowance.days,
                    "total": allowance.phase.max_submissions,
                }
            )


def _participations(
    challenge: Challenge, teams: list[ParticipantTeam], *, lock: bool
) -> dict[int, ChallengeParticipation]:
    rows = ChallengeParticipation.objects.filter(challenge=challenge, team__in=teams).order_by("pk")
    if lock:
        rows = rows.select_for_update()
    found = {p.team_id: p for p in rows}
    for team in teams:
        participation = found.get(team.pk)
        if participation is None:
            raise MergeRefused(
                _("The team %(team)r does not take part in %(challenge)r.")
                % {"team": team.name, "challenge": challenge.title}
            )
        if participation.is_host_team or participation.is_banned:
            raise MergeRefused(
                _("The team %(team)r cannot merge in %(challenge)r.")
                % {"team": team.name, "challenge": challenge.title}
            )
    return found


# ---------------------------------------------------------------- the services


def team_merge_request(
    *,
    challenge: Challenge,
    requesting_team: ParticipantTeam,
    receiving_team: ParticipantTeam,
    user: AbstractBaseUser,
) -> TeamMerge:
    """`user`, the leader of `requesting_team`, asks `receiving_team` to merge with it."""
    require_team_leader(user, requesting_team, _("ask another team to merge"))
    if requesting_team.pk == receiving_team.pk:
        raise MergeRefused(_("A team cannot merge with itself."))
    now = timezone.now()
    with transaction.atomic():
        _participations(challenge, [requesting_team, receiving_team], lock=False)
        _check_merge(challenge, requesting_team, receiving_team, now)
        existing = TeamMerge.objects.filter(
            challenge=challenge,
            requesting_team=requesting_team,
            receiving_team=receiving_team,
            status=Status.PENDING,
        ).first()
        if existing is not None:
            return existing
        return TeamMerge.objects.create(
            challenge=challenge,
            requesting_team=requesting_team,
            receiving_team=receiving_team,
            requesting_team_name=requesting_team.name,
            receiving_team_name=receiving_team.name,
            requested_by=user,
            requested_at=now,
        )


def team_merge_accept(*, merge: TeamMerge, user: AbstractBaseUser) -> TeamMerge:
    """The receiving team's leader accepts: members and submissions move, one row remains."""
    challenge = merge.challenge
    now = timezone.now()
    with transaction.atomic():
        requesting, receiving = merge.requesting_team, merge.receiving_team
        _participations(challenge, [requesting, receiving], lock=True)
        teams = {
            t.pk: t
            for t in ParticipantTeam.objects.select_for_update()
            .filter(pk__in=[requesting.pk, receiving.pk])
            .order_by("pk")
        }
        requesting, receiving = teams[requesting.pk], teams[receiving.pk]
        merge = TeamMerge.objects.select_for_update().get(pk=merge.pk)
        require_team_leader(user, receiving, _("accept a merge request"))
        _require_pending(merge)
        _check_merge(challenge, requesting, receiving, now)
        _check_nothing_in_flight(challenge, requesting)
        current = set(receiving.memberships.values_list("user_id", flat=True))
        incoming = [
            uid
            for uid in requesting.memberships.values_list("user_id", flat=True)
            if uid not in current
        ]
        users = _lock_users([*current, *incoming])
        newcomers = [u for u in users if u.pk in incoming]
        # The merged team must stay valid in the receiving team's other ongoing challenges,
        # as after a join; this challenge's rules were checked above.
        for other in _ongoing_challenges_of(receiving):
            if other.pk == challenge.pk:
                continue
            _check_team_size(other, receiving, len(users), joining=True)
            _check_one_team_per_challenge(other, receiving, newcomers, actor=user)
            _check_members_eligible(other, newcomers, actor=user)
        ParticipantTeamMember.objects.bulk_create(
            ParticipantTeamMember(team=receiving, user_id=uid, joined_at=now) for uid in incoming
        )
        taken = Submission.objects.filter(phase__challenge=challenge, team=requesting)
        # A submission moved twice (A into B, then B into C) keeps the team that made it.
        taken.filter(merged_from_team__isnull=True).update(merged_from_team=requesting)
        submissions_moved = taken.update(team=receiving)
        _trim_final_picks(challenge, receiving, requesting)
        ChallengeParticipation.objects.filter(challenge=challenge, team=requesting).delete()
        superseded = (
            TeamMerge.objects.filter(challenge=challenge, status=Status.PENDING)
            .filter(Q(requesting_team__in=[requesting, receiving]) | Q(receiving_team=requesting))
            .exclude(pk=merge.pk)
            .values_list("pk", flat=True)
        )
        transition_many(
            TeamMerge,
            TRANSITIONS,
            pks=list(superseded),
            step="supersede",
            to=Status.WITHDRAWN,
            decided_at=now,
        )
        for phase in challenge.phases.all():
            # The one writer rewrites both teams' rows: the requesting team's go, the
            # receiving team's are derived again from all of its (and its new) results.
            leaderboard_refresh(phase=phase, team_ids=[requesting.pk, receiving.pk])
        transition(
            TeamMerge,
            TRANSITIONS,
            pk=merge.pk,
            step="accept",
            to=Status.ACCEPTED,
            decided_by=user,
            decided_at=now,
            members_moved=len(incoming),
            submissions_moved=submissions_moved,
        )
        # The row is locked and was found pending above: the transition cannot miss it.
        merge.refresh_from_db()
        audit_record(
            actor=user,
            action=AuditEvent.Action.TEAM_MERGE,
            target=f"{requesting.name} -> {receiving.name}",
            challenge=challenge,
            merge=merge.pk,
            requesting_team=requesting.pk,
            receiving_team=receiving.pk,
            members_moved=len(incoming),
            submissions_moved=submissions_moved,
        )
    return merge


def team_merge_decline(*, merge: TeamMerge, user: AbstractBaseUser) -> TeamMerge:
    """The receiving team's leader declines."""
    require_team_leader(user, merge.receiving_team, _("decline a merge request"))
    return _close(merge, user, Status.DECLINED, "decline")


def team_merge_withdraw(*, merge: TeamMerge, user: AbstractBaseUser) -> TeamMerge:
    """A member of the requesting team withdraws the request."""
    require_team_member(
        user,
        merge.requesting_team,
        _("Only members of the team %(team)r can withdraw its merge request.")
        % {"team": merge.requesting_team.name},
    )
    return _close(merge, user, Status.WITHDRAWN, "withdraw")


# ---------------------------------------------------------------- helpers


def _close(merge: TeamMerge, user: AbstractBaseUser, status: str, step: str) -> TeamMerge:
    moved = transition(
        TeamMerge,
        TRANSITIONS,
        pk=merge.pk,
        step=step,
        to=status,
        decided_by=user,
        decided_at=timezone.now(),
    )
    merge.refresh_from_db()
    if not moved:
        _require_pending(merge)
    return merge


def _check_nothing_in_flight(challenge: Challenge, requesting: ParticipantTeam) -> None:
    """A submission being evaluated would record its result for the team it was claimed
    for; the requesting team waits until its submissions are done. (No new one can start:
    the caller holds the team's participation, the lock intake takes.)"""
    waiting = Submission.objects.filter(
        phase__challenge=challenge, team=requesting, status__in=Submission.IN_FLIGHT
    ).count()
    if waiting:
        raise MergeRefused(
            ngettext(
                "The team %(team)r has %(count)d submission waiting or being evaluated; "
                "accept the merge once it has finished.",
                "The team %(team)r has %(count)d submissions waiting or being evaluated; "
                "accept the merge once they have finished.",
                waiting,
            )
            % {"team": requesting.name, "count": waiting}
        )


def _require_pending(merge: TeamMerge) -> None:
    if merge.status != Status.PENDING:
        raise MergeRefused(
            _("This merge request is no longer open (%(status)s).")
            % {"status": merge.get_status_display().lower()}
        )


def _trim_final_picks(
    challenge: Challenge, receiving: ParticipantTeam, requesting: ParticipantTeam
) -> None:
    """Kaggle: the merged team keeps at most `max_final_submissions` picks per phase; the
    receiving team's stand, the moved ones go where together they would pass the cap."""
    for phase in challenge.phases.exclude(max_final_submissions=None):
        picks = Submission.objects.filter(phase=phase, team=receiving, is_final=True)
        if picks.count() > phase.max_final_submissions:
            picks.filter(merged_from_team=requesting).update(is_final=False)

"""Host teams."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext as _

from challenges.access import require_host_team_member
from challenges.models import HostTeam, HostTeamMember
from challenges.text_checks import refuse_bidi


@transaction.atomic
def host_team_create(*, name: str, creator: AbstractBaseUser) -> HostTeam:
    refuse_bidi(name, what=_("Host team name"))
    team = HostTeam.objects.create(name=name, created_by=creator)
    HostTeamMember.objects.create(team=team, user=creator, role=HostTeamMember.Role.ADMIN)
    return team


def host_team_add_member(
    *, team: HostTeam, user: AbstractBaseUser, added_by: AbstractBaseUser | None = None
) -> HostTeamMember:
    """Add `user` to `team`. `added_by` must be a member (None: an operator via manage.py)."""
    if added_by is not None:
        require_host_team_member(added_by, team)
    member, _ = HostTeamMember.objects.get_or_create(team=team, user=user)
    return member

"""Groups at the identity provider to roles here, at every sign-in, for every backend.

Only the roles a mapping names are the provider's to decide: with SSO_ADMIN_GROUPS empty
an admin's staff flags are left as the Django admin set them, and host teams missing
from SSO_HOST_TEAM_GROUPS keep the members their hosts added.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from challenges.models import HostTeam, HostTeamMember


@dataclass(frozen=True)
class RoleChanges:
    """What one sign-in changed (for the log and the tests)."""

    admin: bool | None = None  # None: not decided by the provider
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def _folded(groups: Iterable[str]) -> set[str]:
    # Directory group names compare without case (Active Directory's do); ids are unaffected.
    return {str(g).strip().casefold() for g in groups if str(g).strip()}


def user_sync_roles(*, user: AbstractBaseUser, groups: Iterable[str]) -> RoleChanges:
    """Give `user` the roles its provider `groups` map to, and take away the mapped roles
    its groups no longer give. A mapped host team that does not exist yet is created
    (by its first member)."""
    member_of = _folded(groups)
    admin: bool | None = None
    joined: list[str] = []
    left: list[str] = []
    with transaction.atomic():
        if settings.SSO_ADMIN_GROUPS:
            admin = bool(member_of & _folded(settings.SSO_ADMIN_GROUPS))
            if user.is_staff != admin or user.is_superuser != admin:
                user.is_staff = user.is_superuser = admin
                user.save(update_fields=["is_staff", "is_superuser"])
        for group, team_name in settings.SSO_HOST_TEAM_GROUPS.items():
            wanted = group.strip().casefold() in member_of
            if wanted:
                team = _host_team(team_name, user)
                _, created = HostTeamMember.objects.get_or_create(team=team, user=user)
                if created:
                    joined.append(team_name)
            else:
                deleted, _ = HostTeamMember.objects.filter(team__name=team_name, user=user).delete()
                if deleted:
                    left.append(team_name)
    return RoleChanges(admin=admin, joined=joined, left=left)


def _host_team(name: str, first_member: AbstractBaseUser) -> HostTeam:
    try:
        with transaction.atomic():
            return HostTeam.objects.get_or_create(name=name, defaults={"created_by": first_member})[
                0
            ]
    except IntegrityError:
        # Two first members signed in at once; the other one created it.
        return HostTeam.objects.get(name=name)

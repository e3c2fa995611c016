"""The one mapping from provider groups to roles (both backends call it)."""

from __future__ import annotations

import pytest

from challenges.identity.roles import user_sync_roles
from challenges.models import HostTeam, HostTeamMember

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def mapped(settings):
    settings.SSO_ADMIN_GROUPS = ["EvalServer-Admins"]
    settings.SSO_HOST_TEAM_GROUPS = {"ds-hosts": "Data Science", "nlp-hosts": "NLP Lab"}


def test_groups_give_and_take_roles_without_regard_to_case(mapped, users):
    charlie = users["charlie"]
    changes = user_sync_roles(user=charlie, groups=["evalserver-admins", "DS-HOSTS"])
    assert changes.admin is True and changes.joined == ["Data Science"]
    charlie.refresh_from_db()
    assert charlie.is_staff and charlie.is_superuser
    assert HostTeam.objects.get(name="Data Science").created_by == charlie

    changes = user_sync_roles(user=charlie, groups=["nlp-hosts"])
    assert changes.admin is False and changes.left == ["Data Science"]
    assert changes.joined == ["NLP Lab"]
    charlie.refresh_from_db()
    assert not charlie.is_staff and not charlie.is_superuser
    assert list(
        HostTeamMember.objects.filter(user=charlie).values_list("team__name", flat=True)
    ) == ["NLP Lab"]


def test_roles_no_mapping_names_are_left_alone(settings, users, host_teams):
    settings.SSO_ADMIN_GROUPS = []
    settings.SSO_HOST_TEAM_GROUPS = {}
    admin, alice = users["admin"], users["alice"]
    assert user_sync_roles(user=admin, groups=[]).admin is None
    user_sync_roles(user=alice, groups=[])
    admin.refresh_from_db()
    assert admin.is_staff and admin.is_superuser
    assert HostTeamMember.objects.filter(user=alice, team=host_teams["alice"]).exists()


def test_a_host_team_not_in_the_mapping_keeps_its_members(mapped, users, host_teams):
    user_sync_roles(user=users["alice"], groups=[])
    assert HostTeamMember.objects.filter(user=users["alice"], team=host_teams["alice"]).exists()

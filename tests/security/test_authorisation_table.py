"""Every operation of the served OpenAPI schema, for each of seven roles, answers what
tests/security/authorisation_table.txt says; an operation missing from the table fails."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.security.authz import ROLES, format_row, read_table
from tests.security.schema_walk import operations, path_values, request

pytestmark = pytest.mark.django_db


def observe(world, users, ops) -> dict[str, dict[str, int]]:
    valid = path_values(world, users)
    clients = {}
    for role, name in ROLES.items():
        client = APIClient()
        if name:
            token, _ = Token.objects.get_or_create(user=users[name])
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        clients[role] = client
    return {
        op.key: {
            role: request(clients[role], op.method, op.url(valid)).status_code for role in ROLES
        }
        for op in ops
    }


@pytest.fixture
def no_throttles(settings):
    settings.THROTTLE_RATES = {}


def test_it_has_a_row_for_every_operation_of_the_schema(world, users, no_throttles):
    table = read_table()
    missing = [op for op in operations() if op.key not in table]
    if missing:
        # What the code answers today, as rows to review (not to paste blindly).
        seen = observe(world, users, missing)
        rows = "\n".join(format_row(key, statuses) for key, statuses in seen.items())
        pytest.fail(
            "operations missing from tests/security/authorisation_table.txt; what they "
            f"answer now, to review and add:\n{rows}"
        )
    stale = sorted(set(table) - {op.key for op in operations()})
    assert not stale, f"rows for operations the schema no longer has: {stale}"


def test_it_answers_every_operation_and_role_as_the_table_says(world, users, no_throttles):
    table = read_table()
    ops = [op for op in operations() if op.key in table]
    seen = observe(world, users, ops)
    wrong = [
        f"{format_row(key, seen[key])}   (table: {format_row(key, table[key]).split(None, 2)[2]})"
        for key in seen
        if seen[key] != table[key]
    ]
    print(
        f"authorisation table: {len(ops)} operations x {len(ROLES)} roles = {len(ops) * len(ROLES)}"
    )
    assert not wrong, "\n" + "\n".join(wrong)

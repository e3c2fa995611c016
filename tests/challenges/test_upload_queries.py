"""What an upload asks of the database: the same statements for the first upload and the
tenth, each compiled once (bench/profile_upload.py measures their CPU)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.workers.pipeline_helpers import (
    GOOD_EVALUATE,
    load_approved,
    participate,
    script_bundle,
    statements_of,
)
from tests.workers.pipeline_helpers import submit as api_submit

pytestmark = pytest.mark.django_db

# The token and its user; the phase with its challenge (and whether the reader hosts it)
# and, on PostgreSQL, the team's participation (elsewhere a statement of its own); in one
# transaction: lock it, count its submissions (quotas and storage), insert the submission.
# (The enqueue's UPDATE runs once the transaction commits, which a test's transaction
# never does.)
STATEMENTS = 5 if connection.vendor == "postgresql" else 6


def test_an_upload_takes_a_fixed_set_of_statements(users, host_teams, api):
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    client = api("charlie")
    seen = []
    for guess in ("40", "41", "39"):
        with CaptureQueriesContext(connection) as queries:
            response = api_submit(client, challenge, "probe", guess, name="guess.txt")
        assert response.status_code == 201, response.content
        seen.append(statements_of(queries.captured_queries))
    assert len(seen[-1]) <= STATEMENTS, seen[-1]
    assert [len(s) for s in seen] == [len(seen[0])] * 3

"""What evaluating one submission asks of the database: the same statements for the first
submission and the tenth, and none on the challenge row (nothing in the worker reads it)."""

from __future__ import annotations

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from challenges.models import Submission
from tests.workers.pipeline_helpers import (
    GOOD_EVALUATE,
    load_approved,
    participate,
    script_bundle,
    statements_of,
)
from tests.workers.pipeline_helpers import submit as api_submit
from workers.evaluation import evaluate_submission

pytestmark = pytest.mark.django_db

# Read the row; claim it; the script and the splits; record the outcome and the results;
# lock the team, then read its standing (after the lock: a joined read waiting for the lock
# would miss a ban or a final pick its holder committed) and its entries; delete the
# entries a better result beats and write its own (neither when it beats none); the outbox
# event that tells the team (issue 26: one INSERT, fanned out by the task after the commit).
STATEMENTS = 12


def test_evaluating_a_file_submission_takes_a_fixed_set_of_statements(users, host_teams, api):
    challenge = load_approved(io.BytesIO(script_bundle(GOOD_EVALUATE)), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    counts = []
    for guess in ("40", "41", "39"):
        response = api_submit(api("charlie"), challenge, "probe", guess, name="guess.txt")
        assert response.status_code == 201, response.content
        sid = response.json()["id"]
        with CaptureQueriesContext(connection) as queries:
            evaluate_submission(submission_id=sid, worker_node="test")
        submission = Submission.objects.get(pk=sid)
        assert submission.status == Submission.Status.FINISHED, submission.failure_message
        statements = statements_of(queries.captured_queries)
        assert not [s for s in statements if '"challenges_challenge"' in s], statements
        counts.append(len(statements))
    assert max(counts) <= STATEMENTS, counts

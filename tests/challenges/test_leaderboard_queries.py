"""Reading a leaderboard costs the same number of queries for one team as for many."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.challenges.leaderboard_helpers import board_url, load, scored, team

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenge(users, host_teams, django_user_model):
    challenge = load(users, host_teams["alice"])
    team(django_user_model, challenge, "Mine", user=users["charlie"])
    return challenge


def _add_teams(challenge, django_user_model, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        t = team(django_user_model, challenge, f"T{i:03d}")
        scored(challenge, t, {"Acc": i / 100, "Err": 1 - i / 100, "F1": 0.5})
        scored(challenge, t, {"Acc": i / 200, "Err": 0.5})


def _count(client, url: str, **query) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, query)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


ENDPOINTS = [("main", ""), ("main", "me/"), ("hidden", "")]


@pytest.mark.parametrize("who", [None, "charlie", "alice"])
def test_a_leaderboard_read_costs_a_constant_number_of_queries(
    api, challenge, django_user_model, django_assert_num_queries, who
):
    client = api(who)
    _add_teams(challenge, django_user_model, 1)
    cases = [
        (split, tail)
        for split, tail in ENDPOINTS
        if not (who is None and tail) and not (who != "alice" and split == "hidden")
    ]
    one = {case: _count(client, board_url(challenge, case[0], tail=case[1])) for case in cases}
    _add_teams(challenge, django_user_model, 40, start=1)
    for (split, tail), queries in one.items():
        with django_assert_num_queries(queries):
            response = client.get(board_url(challenge, split, tail=tail), {"order_by": "Err"})
        assert response.status_code == 200
        if not tail:
            assert response.json()["count"] == 41
    # And a small number at that: the token, access (challenge, host check, split, team),
    # then the ranking and the page's rows.
    assert max(one.values()) <= 7, one


def test_recording_a_result_costs_the_same_queries_however_many_results_the_team_has(
    challenge, django_user_model
):
    """The entries are merged, not recomputed: a team's 31st result costs what its first did."""
    from challenges.models import Submission
    from challenges.services.submissions import (
        EvaluationRecord,
        submission_claim,
        submission_record_outcome,
    )
    from tests.challenges.leaderboard_helpers import submit_row

    t = team(django_user_model, challenge, "Busy")

    def record_queries(acc: float) -> int:
        claimed = submission_claim(
            submission_id=submit_row(challenge, t).pk, worker="test/1", time_limit_s=60
        )
        record = EvaluationRecord(
            ok=True, scores={"main": {"Acc": acc}, "hidden": {"Acc": acc}}, missing_splits=[]
        )
        with CaptureQueriesContext(connection) as ctx:
            assert submission_record_outcome(submission=claimed, record=record)
        return len(ctx.captured_queries)

    first = record_queries(0.1)
    for i in range(29):
        scored(challenge, t, {"Acc": i / 100})
    # A better result replaces the team's entries (one DELETE more than the first,
    # which had none to replace); a worse one writes no entry (one INSERT fewer).
    assert record_queries(0.9) == first + 1
    assert record_queries(0.05) == first - 1
    # The outcome and the results (4 queries), then the team's entries: lock, flags,
    # whether it picked finals, the submission, its current entries, the replaced ones
    # out, the new ones in; and the savepoints of the two transactions.
    assert first <= 14
    assert Submission.objects.filter(team=t, status="finished").count() == 32

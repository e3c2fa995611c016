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


def test_recording_a_result_costs_a_constant_number_of_queries(
    challenge, django_user_model, django_assert_max_num_queries
):
    from challenges.models import Submission
    from challenges.services.submissions import (
        EvaluationRecord,
        submission_claim,
        submission_record_outcome,
    )
    from tests.challenges.leaderboard_helpers import submit_row

    t = team(django_user_model, challenge, "Busy")
    for _ in range(30):
        scored(challenge, t, {"Acc": 0.1})
    claimed = submission_claim(
        submission_id=submit_row(challenge, t).pk, worker="test/1", time_limit_s=60
    )
    record = EvaluationRecord(
        ok=True, scores={"main": {"Acc": 0.2}, "hidden": {"Acc": 0.2}}, missing_splits=[]
    )
    # The outcome and the results (5 queries), then the team's entries: lock, splits,
    # results, flags, delete, insert; plus two savepoints.
    with django_assert_max_num_queries(14):
        submission_record_outcome(submission=claimed, record=record)
    assert Submission.objects.get(pk=claimed.pk).status == "finished"

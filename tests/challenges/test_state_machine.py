"""The submission state machine: each transition of the table moves a submission from its
starting statuses and from no other, exactly once."""

from __future__ import annotations

import pytest

from challenges.models import Submission
from challenges.services.submissions import (
    ENDED,
    EVALUATING,
    IN_FLIGHT,
    TRANSITIONS,
    WAITING,
    submission_transition,
)
from tests.challenges.leaderboard_helpers import load, submit_row, team

pytestmark = pytest.mark.django_db
Status = Submission.Status


@pytest.fixture
def row(users, host_teams, django_user_model):
    challenge = load(users, host_teams["alice"])
    eagles = team(django_user_model, challenge, "Eagles")
    return lambda: submit_row(challenge, eagles)


def test_the_groups_partition_the_statuses():
    assert set(IN_FLIGHT) == set(WAITING) | set(EVALUATING)
    assert not set(IN_FLIGHT) & set(ENDED)
    assert set(IN_FLIGHT) | set(ENDED) == set(Status.values)


@pytest.mark.parametrize(("step", "to"), sorted(TRANSITIONS))
def test_each_transition_moves_from_its_statuses_once_and_from_no_other(row, step, to):
    allowed = TRANSITIONS[(step, to)]
    for status in Status.values:
        submission = row()
        Submission.objects.filter(pk=submission.pk).update(status=status)
        moved = submission_transition(submission_id=submission.pk, step=step, to=to)
        submission.refresh_from_db()
        if status in allowed:
            assert moved and submission.status == to, status
            # Again: the row has left the starting statuses (unless `to` is one of them).
            again = submission_transition(submission_id=submission.pk, step=step, to=to)
            assert again == (to in allowed)
        else:
            assert not moved and submission.status == status, status


def test_a_step_to_a_status_the_table_does_not_list_is_refused(row):
    submission = row()
    with pytest.raises(KeyError):
        submission_transition(submission_id=submission.pk, step="cancel", to=Status.FINISHED)


def test_narrowing_to_statuses_outside_the_table_is_refused(row):
    submission = row()
    with pytest.raises(ValueError, match="not allowed from"):
        submission_transition(
            submission_id=submission.pk,
            step="fail",
            to=Status.FAILED,
            from_statuses=(Status.FINISHED,),
        )
    assert Submission.objects.get(pk=submission.pk).status == Status.QUEUED


def test_fields_are_written_with_the_status_and_only_then(row):
    submission = row()
    assert submission_transition(
        submission_id=submission.pk,
        step="cancel",
        to=Status.CANCELLED,
        failure_message="Cancelled.",
    )
    assert not submission_transition(
        submission_id=submission.pk, step="cancel", to=Status.CANCELLED, failure_message="again"
    )
    assert Submission.objects.get(pk=submission.pk).failure_message == "Cancelled."


def test_a_counter_is_added_to_by_the_compiled_update_as_by_the_orm(row):
    from django.db.models import F

    from challenges.services import state_machine

    counted = F("enqueue_count") + 1
    # Twice: the second submission's update runs the shape the first one's compiled.
    for _ in range(2):
        submission = row()
        Submission.objects.filter(pk=submission.pk).update(status=Status.SUBMITTED)
        assert submission_transition(
            submission_id=submission.pk, step="enqueue", to=Status.QUEUED, enqueue_count=counted
        )
        assert not submission_transition(
            submission_id=submission.pk, step="enqueue", to=Status.QUEUED, enqueue_count=counted
        )
        submission.refresh_from_db()
        assert (submission.status, submission.enqueue_count) == (Status.QUEUED, 1)
    shapes = [k for k in state_machine._COMPILED if ("enqueue_count", "enqueue_count", "+") in k]
    assert shapes and all(state_machine._COMPILED[k] for k in shapes)

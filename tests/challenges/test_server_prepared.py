"""The hot path's statements run as plans PostgreSQL keeps per connection
(challenges.prepared.server_sql): the same rows as the text, prepared once per connection,
prepared anew when the server lost them, and plain text wherever a plan cannot be had."""

from __future__ import annotations

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from challenges import access
from challenges.models import NotificationEvent
from challenges.models.notifications import Kind
from challenges.prepared import _numbered, raw_rows, server_sql, statement_text
from tests.conftest import require_service
from tests.workers.pipeline_helpers import GOOD_EVALUATE, load_approved, participate, script_bundle


@pytest.fixture
def challenge(users, host_teams):
    require_service("postgresql", connection.vendor == "postgresql")
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    return challenge


def _server_plans() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def _read_phase(users, challenge):
    with CaptureQueriesContext(connection) as queries:
        phase = access.access_phase(users["charlie"], challenge.pk, codename="probe")
    return phase, [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db
def test_a_hot_statement_is_prepared_once_and_answers_as_the_text_does(users, challenge, settings):
    phase, sent = _read_phase(users, challenge)
    assert len(sent) == 1 and sent[0].startswith("EXECUTE es"), sent
    prepared_from = statement_text(sent[0])
    assert "$1" in prepared_from and '"challenges_challengephase"' in prepared_from
    assert any(prepared_from in plan for plan in _server_plans())

    # A value of the statement's own (the viewer, compared with request.user.pk) keeps its
    # type through EXECUTE: PostgreSQL would take a bare parameter for text.
    assert phase.challenge.viewer_id == users["charlie"].pk
    assert not access.user_is_challenge_host(users["charlie"], phase.challenge)

    again, sent_again = _read_phase(users, challenge)
    assert sent_again == sent  # the same plan, not a second PREPARE
    assert again == phase

    settings.DB_SERVER_PREPARED = False
    as_text, sent_as_text = _read_phase(users, challenge)
    assert not sent_as_text[0].startswith("EXECUTE"), sent_as_text
    assert _fields(as_text) == _fields(phase)


@pytest.mark.django_db
def test_a_statement_postgres_cannot_prepare_runs_as_text_without_spoiling_the_transaction(
    challenge,
):
    with transaction.atomic():
        # PostgreSQL cannot tell which `+` two untyped parameters mean: PREPARE fails.
        assert server_sql(connection, "SELECT %s + %s", 2) == "SELECT %s + %s"
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # the transaction is not aborted
            assert cursor.fetchone() == (1,)
    # A placeholder count that does not match, or a `%` that is not Django's: not prepared.
    assert server_sql(connection, "SELECT 1 WHERE 1 = %s", 2) == "SELECT 1 WHERE 1 = %s"
    assert _numbered("SELECT '%%' || %s") == ("SELECT '%' || $1", 1)
    assert _numbered("SELECT '%d' || %s")[1] == -1


@pytest.mark.django_db(transaction=True)
def test_plans_the_server_lost_or_a_new_connection_lacks_are_prepared_anew(users, challenge):
    phase, sent = _read_phase(users, challenge)
    assert sent[0].startswith("EXECUTE es_")

    # A pooler's reset, an operator, a restart: the server no longer has the plan. Outside
    # a transaction the statement that finds out is prepared and sent again: no error.
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    again, sent_again = _read_phase(users, challenge)
    assert again == phase
    assert sent_again == [sent[0], sent[0]]  # the one that failed, the one that answered
    # Inside a transaction nothing can be sent again: the server's own error, once.
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(DatabaseError, match="does not exist"), transaction.atomic():
        access.access_phase(users["charlie"], challenge.pk, codename="probe")
    assert _read_phase(users, challenge) == (phase, sent)

    # A plan the server has under that name though this connection did not prepare it (a
    # pooler's server connection, a stale plan forgotten after a migration): made anew.
    connection._evalserver_plans = None
    assert _read_phase(users, challenge) == (phase, sent)

    # A new connection starts without plans and prepares its own, under the same name.
    connection.close()
    assert _read_phase(users, challenge) == (phase, sent)
    assert len([p for p in _server_plans() if statement_text(sent[0]) in p]) == 1


_TABLE = NotificationEvent._meta.db_table
_EVENT_SQL = f"SELECT * FROM {_TABLE} WHERE id = %s"  # noqa: S608
_SOME_SQL = f"SELECT id, kind, 41 + %s AS answer FROM {_TABLE} WHERE id = %s"  # noqa: S608
_NO_ID_SQL = f"SELECT kind FROM {_TABLE}"  # noqa: S608


@pytest.mark.django_db
def test_raw_rows_are_the_instances_the_orms_raw_query_makes(users, challenge):
    event = NotificationEvent.objects.create(
        kind=Kind.SUBMISSION_FINISHED, challenge_id=challenge.pk, payload={"board": [1, "二"]}
    )
    by_orm = list(NotificationEvent.objects.raw(_EVENT_SQL, [event.pk]))
    ours = raw_rows(NotificationEvent, _EVENT_SQL, [event.pk])
    assert [_fields(o) for o in ours] == [_fields(o) for o in by_orm]
    assert ours[0].payload == {"board": [1, "二"]}  # the JSON column's converter applied
    assert ours[0].created_at.tzinfo is not None

    # Some of the model's columns and one of its own: the rest deferred, the extra an attribute.
    [row] = raw_rows(NotificationEvent, _SOME_SQL, [1, event.pk])
    assert (row.pk, row.kind, row.answer) == (event.pk, event.kind, 42)
    assert row.get_deferred_fields() == {
        "challenge_id",
        "payload",
        "dedupe_key",
        "created_at",
        "fanned_out_at",
    }
    assert row.payload == {"board": [1, "二"]}  # read when asked, as Django's deferred fields
    with pytest.raises(FieldDoesNotExist):
        raw_rows(NotificationEvent, _NO_ID_SQL, [])


def _fields(obj) -> dict:
    return {k: v for k, v in obj.__dict__.items() if k != "_state"}

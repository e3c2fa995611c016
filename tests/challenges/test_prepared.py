"""Querysets compiled once (challenges.prepared) answer as the ORM does, are counted as
statements, and refuse a value that would reach the SQL changed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from challenges import access
from challenges.models import Challenge, ChallengePhase
from challenges.prepared import Prepared
from challenges.selectors import participation_for_user
from tests.workers.pipeline_helpers import GOOD_EVALUATE, load_approved, participate, script_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenge(users, host_teams):
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    return challenge


def _fields(obj) -> dict:
    return {k: v for k, v in obj.__dict__.items() if k != "_state"}


def test_the_phase_a_member_asks_for_is_the_one_the_orm_reads(users, challenge):
    charlie = users["charlie"]
    phase = access.access_phase(charlie, challenge.pk, codename="probe")
    annotations, public = access._challenge_visibility(charlie, "challenge__")
    rows = access._visible_phase_rows(annotations, public, challenge.pk, {"codename": "probe"})
    expected = rows.get()
    for name in annotations:
        setattr(expected.challenge, name, expected.__dict__.pop(name))
    assert _fields(phase) == _fields(expected)
    assert _fields(phase.challenge) == _fields(expected.challenge)
    assert _fields(phase.challenge.host_team) == _fields(expected.challenge.host_team)
    assert phase._state.fields_cache.keys() == expected._state.fields_cache.keys()
    assert not access.user_is_challenge_host(charlie, phase.challenge)
    assert access.access_phase(charlie, challenge.pk, phase_id=phase.pk) == phase


def test_a_member_is_refused_the_same_way_whichever_way_the_phase_is_read(users, challenge):
    # Numeric text and huge ids take the ORM's way; both refuse as before.
    for asked in ({"codename": "nope"}, {"phase_id": 10**17}, {"phase_id": str(10**15)}):
        with pytest.raises(ChallengePhase.DoesNotExist):
            access.access_phase(users["charlie"], challenge.pk, **asked)
    with pytest.raises(Challenge.DoesNotExist):
        access.access_phase(users["charlie"], 10**17, codename="probe")


def test_the_participation_without_joins_is_the_full_row(users, challenge):
    plain = participation_for_user(users["charlie"], challenge, related=False)
    joined = participation_for_user(users["charlie"], challenge)
    assert _fields(plain) == _fields(joined)
    assert participation_for_user(users["bob"], challenge, related=False) is None


def test_the_phase_and_participation_read_together_are_those_read_apart(users, challenge):
    from challenges.models import ChallengeParticipation

    # The time as PostgreSQL's JSON gives it back must be the column's, to the microsecond.
    ChallengeParticipation.objects.filter(challenge=challenge).update(
        accepted_terms_at=dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
    )
    for name in ("charlie", "bob", "alice"):
        user = users[name]
        phase, participation = access.access_phase_with_participation(
            user, challenge.pk, codename="probe"
        )
        expected_phase = access.access_phase(user, challenge.pk, codename="probe")
        expected = participation_for_user(user, expected_phase.challenge, related=False)
        assert _fields(phase) == _fields(expected_phase)
        assert _fields(phase.challenge) == _fields(expected_phase.challenge)
        assert access.user_is_challenge_host(user, phase.challenge) == (name == "alice")
        if expected is None:
            assert participation is None, name
        else:
            assert _fields(participation) == _fields(expected)
            assert participation.challenge is phase.challenge
            assert not participation._state.adding and participation._state.db == "default"


def test_the_phase_and_participation_are_refused_as_the_phase_alone(users, challenge):
    for asked in ("nope", str(10**15)):
        with pytest.raises(ChallengePhase.DoesNotExist) as together:
            access.access_phase_with_participation(users["charlie"], challenge.pk, codename=asked)
        with pytest.raises(ChallengePhase.DoesNotExist) as alone:
            access.access_phase(users["charlie"], challenge.pk, codename=asked)
        assert str(together.value) == str(alone.value)
    with pytest.raises(Challenge.DoesNotExist):
        access.access_phase_with_participation(users["charlie"], 10**17, codename="probe")


def test_a_prepared_query_is_a_counted_statement_with_the_values_of_each_call(challenge):
    titles = Prepared(
        lambda pk, since: Challenge.objects.filter(pk=pk, created_at__gte=since).values_list(
            "title", flat=True
        ),
        int,
        dt.datetime,
    )
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    with CaptureQueriesContext(connection) as queries:
        assert titles(challenge.pk, long_ago) == [challenge.title]
        assert titles(challenge.pk + 1, long_ago) == []
        assert titles(challenge.pk, dt.datetime.now(dt.UTC)) == []
    assert len(queries.captured_queries) == 3


def test_a_value_the_orm_would_rewrite_is_refused_at_once(challenge):
    contains = Prepared(lambda text: Challenge.objects.filter(title__contains=text), str)
    with pytest.raises(ValueError, match="unused"):
        contains("Bench")


@pytest.mark.parametrize("lookup", ["title__startswith", "title__icontains"])
def test_a_lookup_that_changes_its_value_is_refused_even_when_the_change_is_invisible(
    challenge, lookup
):
    # LIKE lookups escape % and _ (and SQLite's iexact lowercases): a stand-in of lowercase
    # letters alone would pass through unchanged, and the escaping be skipped later.
    rewritten = Prepared(lambda text: Challenge.objects.filter(**{lookup: text}), str)
    with pytest.raises(ValueError, match="unused"):
        rewritten("a_b%")


@pytest.mark.parametrize("value", [None, True, "1", 1.0])
def test_a_value_of_another_type_than_declared_is_refused(challenge, value):
    # None would need IS NULL, a bool is no integer to PostgreSQL, "1" is the ORM's to
    # convert: none of them may be put where the compiled SQL expects an int.
    by_pk = Prepared(lambda pk: Challenge.objects.filter(pk=pk).values_list("pk"), int)
    assert by_pk(challenge.pk) == [(challenge.pk,)]
    with pytest.raises(TypeError, match="declared"):
        by_pk(value)


def test_a_lock_outside_a_transaction_is_refused_as_the_orm_refuses_it(challenge, transactional_db):
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    lock = Prepared(
        lambda pk: Challenge.objects.select_for_update().filter(pk=pk).values_list("pk"), int
    )
    with transaction.atomic():
        assert lock(challenge.pk) == [(challenge.pk,)]  # compiled inside a transaction
    with pytest.raises(TransactionManagementError):
        lock(challenge.pk)


def test_a_row_inserted_with_the_compiled_insert_is_the_row_the_orm_inserts(users, challenge):
    from challenges import prepared
    from challenges.models import Submission

    phase = challenge.phases.get(codename="probe")
    team_id = participation_for_user(users["charlie"], challenge).team_id

    def row(**given):
        return Submission(
            phase=phase,
            team_id=team_id,
            created_by=users["charlie"],
            input_file="submissions/x.csv",
            file_name="x.csv",
            input_sha256="ab" * 32,
            input_size=3,
            method_name="Forest",
            meta_attributes={"depth": 3, "note": "\u6728"},
            submitted_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
            **given,
        )

    by_orm = row()
    by_orm.save(force_insert=True)
    with CaptureQueriesContext(connection) as queries:
        # Twice: the second row is inserted with the SQL the first one's compiled.
        ours = [row(), row()]
        for obj in ours:
            prepared.insert(obj)
    assert len(queries.captured_queries) == 2
    assert prepared._INSERTS[(connection.alias, "challenges.Submission", False, False)]
    for obj in ours:
        assert obj.pk and not obj._state.adding and obj._state.db == connection.alias
        read = Submission.objects.get(pk=obj.pk)
        expected = _fields(Submission.objects.get(pk=by_orm.pk)) | {"id": obj.pk}
        assert _fields(read) == expected
        assert _fields(obj) | {"id": obj.pk} == _fields(by_orm) | {"id": obj.pk}
    reserved = max(o.pk for o in ours) + 1000
    given = row(pk=reserved)
    prepared.insert(given)
    assert given.pk == reserved and Submission.objects.filter(pk=reserved).exists()

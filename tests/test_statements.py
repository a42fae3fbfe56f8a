"""The pump's hand-written statements: on PostgreSQL sent with their parameters apart
from the text (hooks.worker.statements), with the same results and errors."""

from __future__ import annotations

import zoneinfo

import pytest
from django.db import DatabaseError, connection, connections
from django.test.utils import CaptureQueriesContext

from hooks import emit
from hooks.models import Attempt, Delivery, Event
from hooks.worker import claims, statements
from hooks.worker.attempt import deliver
from tests.conftest import TEST_EVENT, make_webhook


def test_placeholders_are_numbered_in_order():
    sql = "UPDATE t SET a = %s WHERE id IN (%s, %s) AND b = %s"
    assert statements.numbered(sql) == "UPDATE t SET a = $1 WHERE id IN ($2, $3) AND b = $4"
    assert statements.numbered("SELECT 1") == "SELECT 1"


def test_a_statement_with_another_percent_sign_is_refused():
    with pytest.raises(ValueError, match="holds a %"):
        statements.numbered("SELECT * FROM t WHERE name LIKE 'a%%' AND id = %s")


@pytest.mark.django_db
def test_a_failing_statement_raises_django_s_error_not_the_driver_s():
    with pytest.raises(DatabaseError), statements.cursor() as cursor:
        cursor.execute("SELECT no_such_column FROM hooks_delivery WHERE id = %s", [1])


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's server-side binding")
def test_a_batch_reaches_postgresql_with_its_parameters_apart_from_the_text(receiver):
    """The claim, the attempts' INSERT and the deliveries' UPDATE: `$n` placeholders in
    the text, the values beside it (Django's client-side cursor wrote them into it),
    and the rows as the ORM reads them."""
    make_webhook(receiver.url)
    for n in range(3):
        emit(TEST_EVENT, {"n": n, "quote": 'it\'s \\ "odd"'})
    with CaptureQueriesContext(connection) as captured:
        token, batch = claims.claim(None, 10, lease=60)
        deliver(token, batch)
    sent = [q["sql"] for q in captured.captured_queries]
    claim = next(sql for sql in sent if "WITH claimed AS (UPDATE" in sql)
    insert = next(sql for sql in sent if sql.startswith('INSERT INTO "hooks_attempt"'))
    update = next(sql for sql in sent if sql.startswith('UPDATE "hooks_delivery" SET "status"'))
    for sql in (claim, insert, update):
        assert "$1" in sql and token.hex not in sql and str(token) not in sql
    assert "it''s" not in insert  # the body went as a parameter, not a quoted literal
    receiver.wait_for(3)
    assert Delivery.objects.filter(status="succeeded", claim_token=None).count() == 3
    bodies = {a.request_body for a in Attempt.objects.all()}
    assert len(bodies) == 3 and all('it\'s \\\\ \\"odd\\"' in b for b in bodies)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's loaders")
def test_timestamps_come_back_as_the_orm_reads_them_by_psycopg_s_c_loader():
    """In UTC psycopg's own loader (in C) reads them, to the same values and tzinfo as
    Django's loader (a Python subclass, ~2 µs a timestamp, eleven per claimed delivery)."""
    event = hooks_event()
    sql = 'SELECT "created_at" FROM "hooks_event" WHERE "id" = %s'
    with statements.cursor() as cursor:
        cursor.execute(sql, [event.pk])
        ((read,),) = cursor.fetchall()
        loader = cursor.wrapped.cursor.adapters.get_loader(
            cursor.wrapped.cursor.adapters.types["timestamptz"].oid, 0
        )
    orm = Event.objects.get(pk=event.pk).created_at
    assert read == orm and read.tzinfo is orm.tzinfo
    assert loader.__module__.endswith("._psycopg")  # psycopg_c or psycopg_binary


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's loaders")
def test_in_another_time_zone_timestamps_are_read_as_django_would(monkeypatch):
    """Django's loader then, registered as its own `create_cursor` would."""
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    event = hooks_event()
    wrapper = connections[connection.alias]  # the wrapper itself, not its proxy
    monkeypatch.setitem(wrapper.__dict__, "timezone", paris)  # as a DATABASES TIME_ZONE
    sql = 'SELECT "created_at" FROM "hooks_event" WHERE "id" = %s'
    with statements.cursor() as cursor:
        cursor.execute(sql, [event.pk])
        ((read,),) = cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql, [event.pk])
        ((django_read,),) = cursor.fetchall()
    assert read == django_read and read.tzinfo is paris


def hooks_event() -> Event:
    return Event.objects.create(type=TEST_EVENT, payload={})


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's raw cursor")
def test_a_connection_s_statements_share_one_raw_cursor_and_a_new_connection_its_own():
    with statements.cursor() as first:
        first.execute("SELECT %s::int", [1])
        assert first.fetchall() == [(1,)]
        raw = first.wrapped.cursor
    with statements.cursor() as second:
        second.execute('UPDATE "hooks_delivery" SET "manual" = %s WHERE false', [True])
        assert second.wrapped.cursor is raw and second.description is None  # nothing left over
    connection.close()
    with statements.cursor() as third:
        third.execute("SELECT %s::int", [3])
        assert third.fetchall() == [(3,)] and third.wrapped.cursor is not raw

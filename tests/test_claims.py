"""Two workers racing over the same due deliveries send each one once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hooks import emit
from hooks.models import Delivery
from hooks.worker import claims
from hooks.worker.attempt import deliver_due
from hooks.worker.sweeper import fail_abandoned
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_workers_racing_send_each_delivery_once(receiver):
    for i in range(5):
        make_webhook(receiver.url, name=f"w{i}")
    for n in range(20):
        emit(TEST_EVENT, {"n": n})
    total = Delivery.objects.count()
    assert total == 100
    start = threading.Barrier(2)
    sent = []

    def worker():
        try:
            start.wait()
            while count := deliver_due(limit=7):
                sent.append(count)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert receiver.wait_for(total)
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == total and set(ids.values()) == {1}
    assert sum(sent) == total
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_ends(receiver):
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    _, first = claims.claim(None, 10, lease=60)
    _, second = claims.claim(None, 10, lease=60)
    assert len(first) == 1 and second == []
    later = timezone.now() + timedelta(seconds=61)
    _, third = claims.claim(None, 10, lease=60, now=later)
    assert [d.pk for d in third] == [first[0].pk]
    assert third[0].attempts == 2  # the cut-short attempt counts


def test_a_last_attempt_cut_short_is_failed_not_lost(receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    claims.claim(None, 10, lease=60)  # ...and the worker dies
    later = timezone.now() + timedelta(seconds=61)
    assert fail_abandoned(later) == 1
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and "stopped during the last attempt" in delivery.last_error


@pytest.mark.skipif(
    not connection.features.has_select_for_update_skip_locked,
    reason="the database serialises writers (SQLite)",
)
def test_a_claim_in_progress_elsewhere_is_skipped_not_waited_for(receiver):
    """While one worker's claim transaction is open, another claims other rows at
    once, instead of queueing behind it and coming back empty."""
    from django.db import transaction

    make_webhook(receiver.url)
    for n in range(4):
        emit(TEST_EVENT, {"n": n})
    holding, done = threading.Event(), threading.Event()
    first: list = []

    def slow_worker():
        try:
            with transaction.atomic():
                first.extend(claims.claim(None, 2, lease=60)[1])
                holding.set()
                done.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_worker)
    thread.start()
    assert holding.wait(10)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Waiting for the other worker's rows would fail here instead of hanging.
            cursor.execute("SET LOCAL lock_timeout = '5s'")
            _, second = claims.claim(None, 4, lease=60)
    finally:
        done.set()
        thread.join(10)
    assert len(first) == 2 and len(second) == 2
    assert not {d.pk for d in first} & {d.pk for d in second}


def test_claimed_rows_load_exactly_as_the_orm_reads_them(receiver):
    """The claim reads deliveries, events and webhooks with one hand-written join: every
    field must come back as the ORM would give it (datetimes, JSON, UUIDs, booleans)."""
    from hooks.models import Event, Webhook

    hook = make_webhook(receiver.url, headers={"X-Team": "ops"}, github_signature=True, timeout=2.5)
    emit(TEST_EVENT, {"n": 1, "nested": {"é": [1, 2.5, None]}})
    emit(TEST_EVENT, {"n": 2}, target_url=receiver.url, target_schedule=(0, 10))
    _, claimed = claims.claim(None, 10, lease=60)
    assert len(claimed) == 3
    for d in claimed:
        fresh = Delivery.objects.get(pk=d.pk)
        for field in Delivery._meta.concrete_fields:
            assert getattr(d, field.attname) == getattr(fresh, field.attname), field.name
        event = Event.objects.get(pk=d.event_id)
        for field in Event._meta.concrete_fields:
            assert getattr(d.event, field.attname) == getattr(event, field.attname), field.name
        if d.webhook_id:
            for field in Webhook._meta.concrete_fields:
                assert getattr(d.webhook, field.attname) == getattr(hook, field.attname), field.name
        else:
            assert d.webhook is None and d.retry_schedule == [0, 10]
    with_webhook = [d for d in claimed if d.webhook_id]
    assert with_webhook[0].webhook is with_webhook[1].webhook  # one shared instance


def test_claimed_deliveries_behave_as_loaded_instances(receiver):
    """Built without Model.__init__ (rows.instance): they are saved rows of the default
    database, their relations are cached (no query to reach them), and saving one
    updates its row rather than inserting another."""
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    _, (d,) = claims.claim(None, 10, lease=60)
    assert not d._state.adding and d._state.db == "default"
    with CaptureQueriesContext(connection) as queries:
        assert d.event.payload == {"n": 1} and d.webhook.url == receiver.url
        assert d.signed_by_id is None
    assert len(queries) == 0
    d.last_error = "noted"
    d.save(update_fields=["last_error"])
    assert Delivery.objects.get().last_error == "noted"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner and its statistics")
def test_a_claim_reads_its_rows_back_by_index_after_analyze(receiver):
    """Delivered rows all hold a NULL token; once ANALYZE (or PRAGMA optimize) has
    counted them, a full index on the token looked useless and SQLite scanned the whole
    table to read a claim back and to renew it (the drain at a million rows: 0.19×)."""
    from bench.history import fill  # writes the rows at rest by SQL, then ANALYZE

    webhook = make_webhook(receiver.url)
    fill(webhook, 500)
    emit(TEST_EVENT, {"n": 1})
    with CaptureQueriesContext(connection) as captured:
        token, claimed = claims.claim(None, 10, lease=60)
        claims.renew([token], timezone.now() + timedelta(seconds=60))
    assert len(claimed) == 1
    by_token = [q["sql"] for q in captured.captured_queries if "claim_token" in q["sql"]]
    assert len(by_token) >= 2
    for sql in by_token:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            steps = [row[3] for row in cursor.fetchall()]
        assert not [s for s in steps if s.startswith("SCAN")], (sql, steps)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner without statistics")
def test_claiming_known_ids_finds_them_by_primary_key_however_big_the_backlog(receiver):
    """Without statistics SQLite preferred the (status, next_attempt_at) range for
    `id IN (…) AND status = 'pending' AND …`: each claim read the whole backlog."""
    make_webhook(receiver.url)
    for n in range(30):
        emit(TEST_EVENT, {"n": n})
    ids = list(Delivery.objects.values_list("pk", flat=True)[:5])
    with CaptureQueriesContext(connection) as captured:
        token, claimed = claims.claim(ids, 10, lease=60)
    assert len(claimed) == 5
    (update,) = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {update}")
        steps = [row[3] for row in cursor.fetchall()]
    assert steps and all("(id=?)" in step for step in steps), steps


def _mixed_deliveries(receiver) -> tuple[list, int]:
    """Deliveries in every state a claim must tell apart; returns their ids and the
    webhook a pump would exclude."""
    live, stopped, excluded = (make_webhook(receiver.url, name=n) for n in ("a", "b", "c"))
    for n in range(4):
        emit(TEST_EVENT, {"n": n})
    event = Delivery.objects.first().event
    now = timezone.now()
    Delivery.objects.create(event=event, target_url=receiver.url, next_attempt_at=now)  # no webhook
    Delivery.objects.create(
        event=event, target_url=receiver.url, next_attempt_at=now, signed_by=live
    )
    a = list(Delivery.objects.filter(webhook=live).order_by("pk"))
    b = list(Delivery.objects.filter(webhook=stopped).order_by("pk"))
    soon, ago = now + timedelta(minutes=5), now - timedelta(minutes=5)
    Delivery.objects.filter(pk=a[0].pk).update(next_attempt_at=soon)  # not due yet
    Delivery.objects.filter(pk=a[1].pk).update(claimed_until=soon)  # claimed by another
    Delivery.objects.filter(pk=a[2].pk).update(claimed_until=ago)  # its lease ran out
    Delivery.objects.filter(pk=a[3].pk).update(attempts=10, max_attempts=10)  # no attempt left
    Delivery.objects.filter(pk=b[0].pk).update(manual=True)  # redelivered by hand
    Delivery.objects.filter(pk=b[1].pk).update(status=Delivery.Status.SUCCEEDED)
    stopped.active = False
    stopped.save()
    return list(Delivery.objects.values_list("pk", flat=True)), excluded.pk


@pytest.mark.parametrize("ids", ["none", "known", "more than the limit"])
def test_the_claim_takes_exactly_what_the_orm_calls_due(receiver, ids):
    """The claim's hand-written SQL (claim_sql) against the ORM's definition of due."""
    all_ids, excluded = _mixed_deliveries(receiver)
    now = timezone.now() + timedelta(seconds=1)
    due = claims.due(now).filter(claims.sendable()).exclude(webhook_id=excluded)
    expected = set(due.values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=expected).update(enqueued_until=now)
    assert 0 < len(expected) < len(all_ids) - 6
    given = {"none": None, "known": all_ids, "more than the limit": [*all_ids, *all_ids]}[ids]
    claimed = claims.claim_rows(given, len(all_ids), 60, now=now, exclude_webhooks=[excluded])
    mine = set(Delivery.objects.filter(claim_token=claimed.token).values_list("pk", flat=True))
    assert mine == expected
    assert len(claimed.rows) == len(expected)
    after = Delivery.objects.filter(pk__in=expected)
    assert {(d.attempts, d.enqueued_until) for d in after} == {(1, None)}  # reserved
    assert all(d.claimed_until == now + timedelta(seconds=60) for d in after)


def test_a_late_result_does_not_move_a_delivery_claimed_again_since(receiver):
    """A worker whose lease ran out records its attempt, but the delivery stays with the
    worker that holds it now (the recording's UPDATE is conditional on the token)."""
    from hooks.outgoing.transport import OutgoingRequest, Result
    from hooks.worker.recording import Sent, record

    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    old_token, [first] = claims.claim(None, 10, lease=60)
    later = timezone.now() + timedelta(seconds=61)
    new_token, [again] = claims.claim(None, 10, lease=60, now=later)
    request = OutgoingRequest(receiver.url, {}, b"{}", timeout=5, connect_timeout=5)
    [attempt] = record([Sent(first, old_token, request, Result(status=200))])
    delivery = Delivery.objects.get()
    assert attempt.pk and delivery.attempt_set.count() == 1
    assert delivery.status == "pending" and delivery.claim_token == new_token
    record([Sent(again, new_token, request, Result(status=200))])
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.claim_token is None


def test_recorded_attempts_give_every_field_and_read_back_as_the_orm_reads_them(receiver):
    """An attempt's row is written by hand (`recording._attempt_row`, one INSERT by
    `rows.Inserter`): it gives every concrete field of Attempt, and each comes back from
    the database as the instance held it (datetimes, JSON, floats, booleans, NULLs)."""
    from hooks.models import Attempt
    from hooks.outgoing.transport import OutgoingRequest, Result
    from hooks.worker import recording
    from hooks.worker.recording import Sent, record

    make_webhook(receiver.url, name="answers", basic_auth_username="u", basic_auth_password="p")
    make_webhook(receiver.url, name="unreachable")
    emit(TEST_EVENT, {"n": 1, "é": [1, 2.5, None]})
    token, claimed = claims.claim(None, 10, lease=60)
    request = OutgoingRequest(
        receiver.url, {"Authorization": "Basic dTpw", "X-Team": "ops"}, b'{"n": 1}', 5, 5
    )
    answered = Result(status=503, headers={"retry-after": "5"}, body="bientôt".encode(),
                      duration_ms=12.3456, started_at=timezone.now())  # fmt: skip
    unreachable = Result(error="Connection refused", duration_ms=0.5, started_at=timezone.now())
    batch = [
        Sent(d, token, request, r) for d, r in zip(claimed, (answered, unreachable), strict=True)
    ]
    row = recording._attempt_row(batch[0])
    assert set(vars(row)) - {"_state"} == {f.attname for f in Attempt._meta.concrete_fields}
    attempts = record(batch)
    assert len(attempts) == 2
    for attempt in attempts:
        stored = Attempt.objects.get(pk=attempt.pk)
        for field in Attempt._meta.concrete_fields:
            assert getattr(attempt, field.attname) == getattr(stored, field.attname), field.name


def test_an_attempt_writes_no_index_on_its_delivery_alone_and_lookups_use_the_unique_one():
    """(delivery, number) is unique and leads with the delivery: a second index on the
    delivery alone only cost a write per attempt recorded."""
    from hooks.models import Attempt

    table = Attempt._meta.db_table
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    on_delivery = [
        name for name, c in found.items() if c["index"] and c["columns"] == ["delivery_id"]
    ]
    assert on_delivery == []
    assert found["attempt_number_unique"]["columns"] == ["delivery_id", "number"]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN SELECT id FROM {table} WHERE delivery_id = 1")
            steps = [row[3] for row in cursor.fetchall()]
        # the unique constraint's own index (SQLite names it sqlite_autoindex_…)
        assert [s for s in steps if s.startswith("SEARCH") and "(delivery_id=?)" in s], steps

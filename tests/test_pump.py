"""The pump: many deliveries in flight per worker, bounded per endpoint, few broker tasks."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from hooks import emit
from hooks.models import Attempt, Delivery
from hooks.outbox import handover
from hooks.tools.receiver import Receiver, Reply
from hooks.worker.pump import Pump
from tests.conftest import TEST_EVENT, make_webhook
from tests.test_sweeper import broker_task_ids

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_transaction_hands_over_once(receiver):
    make_webhook(receiver.url)
    broker_task_ids()
    with transaction.atomic():
        for n in range(200):
            emit(TEST_EVENT, {"n": n})
    tasks = broker_task_ids()
    assert 1 <= len(tasks) <= handover.MAX_TASKS_PER_ENQUEUE
    assert Pump().drain(tasks[0]) == 200  # the pump goes on past its own ids
    assert len(receiver.requests) == 200
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_separate_transactions_hand_over_separately(receiver):
    make_webhook(receiver.url)
    broker_task_ids()
    emit(TEST_EVENT, {"n": 1})
    emit(TEST_EVENT, {"n": 2})
    assert len(broker_task_ids()) == 2


def test_a_rolled_back_transaction_leaves_no_pending_hand_over(receiver):
    make_webhook(receiver.url)
    broker_task_ids()
    with pytest.raises(RuntimeError), transaction.atomic():
        emit(TEST_EVENT, {"n": 1})
        raise RuntimeError
    emit(TEST_EVENT, {"n": 2})
    [[delivery_id]] = broker_task_ids()
    assert delivery_id == str(Delivery.objects.get().pk)


def test_a_hanging_endpoint_holds_at_most_its_bound_while_others_flow(receiver, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 3
    fast_done = threading.Event()
    with Receiver() as slow:
        slow.respond = lambda request: fast_done.wait(20) and Reply(200)
        make_webhook(slow.url, name="slow")
        make_webhook(receiver.url, name="fast")
        with transaction.atomic():
            for n in range(40):
                emit(TEST_EVENT, {"n": n})

        def watch():
            if receiver.wait_for(40, timeout=20):
                assert len(slow.requests) <= 3  # the bound held while the fast ones flowed
                fast_done.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        recorded = Pump().drain(None, budget=30)
        watcher.join()
    assert fast_done.is_set()
    assert recorded == 80 and len(slow.requests) == 40
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_the_pump_records_failures_and_retries_with_the_schedule(receiver):
    receiver.respond = lambda request: Reply(500)
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    assert Pump().drain(None, budget=5) == 1
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.next_attempt_at


def test_a_dead_endpoint_is_throttled_to_one_request_and_gives_back_its_queue(receiver, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 8
    with Receiver() as dead:
        dead.respond = lambda request: dead.released.wait(30) and None
        make_webhook(dead.url, name="dead", timeout=0.3)
        make_webhook(receiver.url, name="fast")
        with transaction.atomic():
            for n in range(30):
                emit(TEST_EVENT, {"n": n})
        started = time.monotonic()
        Pump().drain(None, budget=3)
        elapsed = time.monotonic() - started
    assert len(receiver.requests) == 30  # the healthy endpoint got everything
    # The dead one: a first wave of at most 2 (slow start), then one at a time.
    assert len(dead.requests) <= 2 + elapsed / 0.3 + 1
    released = Delivery.objects.filter(webhook__name="dead", attempts=0, status="pending")
    assert released.exists() and all(d.claim_token is None for d in released)


def test_a_write_transaction_that_deadlocks_is_tried_again_and_nothing_is_lost(
    receiver, monkeypatch
):
    """A deadlock (two workers updating the same webhooks) rolls back the record and the
    claim; the pump keeps the finished attempts and writes them again."""
    from django.db import OperationalError

    from hooks.models import Attempt
    from hooks.worker import health

    make_webhook(receiver.url)
    for n in range(40):
        emit(TEST_EVENT, {"n": n})
    real, failures = health.after_attempts, []

    def deadlocks_twice(*args, **kwargs):
        if len(failures) < 2:
            failures.append(1)
            raise OperationalError("deadlock detected")
        return real(*args, **kwargs)

    monkeypatch.setattr(health, "after_attempts", deadlocks_twice)
    assert Pump().drain() == 40
    assert len(failures) == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert Attempt.objects.count() == 40  # each attempt recorded once
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_a_write_that_keeps_failing_keeps_its_batch_and_raises(receiver, monkeypatch):
    from django.db import OperationalError

    from hooks.worker import health
    from hooks.worker import pump as pump_module

    monkeypatch.setattr(pump_module, "WRITE_OUTAGE", 0.3)  # gives up after 0.3 s, not 60

    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    pump = Pump()
    pump.refill(None)
    while pump.in_flight:
        pump.collect(timeout=5)

    def broken(*args, **kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(health, "after_attempts", broken)
    with pytest.raises(OperationalError):
        pump.flush(force=True)
    assert len(pump.finished) == 1  # still there for the next try


def test_stalling_endpoints_send_on_their_own_reserve_of_threads(settings):
    """Endpoints that gave no answer wait for the reserve; the endpoints that answer keep
    all of the main threads."""
    from hooks.models import Delivery as Row
    from hooks.outgoing import transport
    from hooks.worker import threads
    from hooks.worker.recording import Sent

    settings.WEBHOOK_SEND_THREADS = 4  # reserve: 1
    gate = threading.Event()
    p = Pump()
    request = transport.OutgoingRequest("http://127.0.0.1:9/", {}, b"", 1, 1)
    ok = transport.Result(status=200)
    p.attempt = lambda d, token: gate.wait(10) and Sent(d, token, request, ok)
    for key in (1, 2):  # two endpoints known to stall, one request at a time each
        p.bounds[key] = 1
        p.stalling.add(key)
    p.bounds[3] = 16
    for key, count in ((1, 3), (2, 3), (3, 10)):
        for _ in range(count):
            p.waiting[key].append((Row(webhook_id=key), None))
    try:
        p.launch()
        assert p.flying[1] + p.flying[2] == threads.stall_reserve(4) == 1
        assert p.flying[3] == 4  # all main threads, none taken by the stalling ones
    finally:
        gate.set()
        for _ in list(p.in_flight):
            p.landed.get(timeout=10)


def test_a_stalling_endpoint_with_a_request_in_flight_is_left_out_of_claims():
    """Whatever a pump claimed for a stalling endpoint beyond its one request would only
    wait and be given back when that request times out: it is not claimed at all."""
    from hooks.models import Delivery as Row

    p = Pump()
    p.bounds.update({1: 1, 2: 2})
    p.stalling.add(1)
    p.flying.update({1: 1, 2: 1})
    assert p.saturated() == [1]  # the answering endpoint may have more waiting
    p.waiting[2].extend([(Row(webhook_id=2), None)] * 3)
    assert sorted(p.saturated()) == [1, 2]


def test_a_claim_gives_back_at_once_what_a_stalling_endpoint_cannot_send(receiver):
    """Its deliveries are the oldest due once every pump leaves it out: a claim that may
    take them takes them all, keeps the one request and hands the rest back in its own
    transaction, unattempted."""
    from django.utils import timezone

    from hooks.outgoing import transport

    gate = threading.Event()
    stalling = make_webhook(receiver.url, name="stalling")
    make_webhook(receiver.url, name="fine")
    for n in range(5):
        emit(TEST_EVENT, {"n": n})
    p = Pump()
    p.bounds[stalling.pk] = 1
    p.stalling.add(stalling.pk)
    p.send = lambda request: gate.wait(10) and transport.Result(status=200)
    try:
        assert p.refill(None) == 6  # five for the one answering, one for the stalling one
        assert p.flying[stalling.pk] == 1 and not p.waiting.get(stalling.pk)
        back = Delivery.objects.filter(webhook=stalling, claim_token__isnull=True)
        assert back.count() == 4
        assert all(d.attempts == 0 and d.next_attempt_at > timezone.now() for d in back)
    finally:
        gate.set()
        for _ in list(p.in_flight):
            p.landed.get(timeout=10)


def test_requests_out_on_the_stall_reserve_do_not_count_against_the_capacity():
    """Dead endpoints' requests have threads of their own; a pump that counted them as
    held would keep fewer requests going to the endpoints that answer."""
    from queue import SimpleQueue

    from hooks.worker.threads import Job

    p = Pump()
    for _ in range(p.reserve):
        job = Job(print, (), SimpleQueue())
        p.in_flight[job] = (None, None, None)
        p.on_reserve.add(job)
    p.in_flight[Job(print, (), SimpleQueue())] = (None, None, None)  # one that answers
    assert p.holding() == 1


def test_a_request_that_cannot_be_built_is_a_failed_attempt_on_every_path(receiver, monkeypatch):
    """The pump and send_now run the same attempt: a delivery whose request cannot be
    built is recorded as a failed attempt (and retried), never lost, and its endpoint is
    not taken for one that stalls."""
    from hooks import send_now
    from hooks.worker import attempt

    def broken(*args):
        raise ValueError("bad stored template")

    monkeypatch.setattr(attempt, "build", broken)
    hook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    pump = Pump()
    assert pump.drain() == 1
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "Could not build the request: bad stored template" in delivery.last_error
    assert hook.pk not in pump.stalling
    [now] = send_now(TEST_EVENT, {"n": 2}, webhooks=[hook])
    assert not now.succeeded and "Could not build the request" in now.error
    assert receiver.requests == []


def test_emit_never_raises_after_commit_when_the_broker_is_down(receiver, monkeypatch, caplog):
    """The rows are committed: the caller succeeds, its other on-commit hooks run, the
    failure is logged once, and the ticker delivers as soon as the broker is back."""
    from hooks.worker.sweeper import sweep_once

    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    make_webhook(receiver.url)
    monkeypatch.setattr(handover, "_async", broker_down)
    after = []
    with transaction.atomic():
        emit(TEST_EVENT, {"n": 1})
        emit(TEST_EVENT, {"n": 2})
        transaction.on_commit(lambda: after.append("ran"))
    assert after == ["ran"]
    assert Delivery.objects.filter(status="pending").count() == 2
    failures = [r for r in caplog.records if "Could not hand" in r.getMessage()]
    assert len(failures) == 1 and "Connection refused" in failures[0].getMessage()
    monkeypatch.undo()
    broker_task_ids()
    # Marked unqueued: the next look at the table (the ticker's, every second) hands
    # them over, without waiting out the grace period.
    assert set(Delivery.objects.values_list("enqueued_until", flat=True)) == {None}
    assert sweep_once() == 2
    assert Pump().drain(broker_task_ids()[0]) == 2 and len(receiver.requests) == 2


def test_the_write_transaction_holds_statements_only(receiver, monkeypatch):
    """Attempts' rows are worked out before the write transaction and claimed rows
    become deliveries after it: on SQLite every other writer waits while it is open."""
    from hooks.worker import claims, recording

    webhook = make_webhook(receiver.url)
    for n in range(20):
        emit(TEST_EVENT, {"n": n})
    inside = []

    def watch(real):
        def watched(*args, **kwargs):
            inside.append(connection.in_atomic_block)
            return real(*args, **kwargs)

        return watched

    monkeypatch.setattr(recording, "_attempt_row", watch(recording._attempt_row))
    monkeypatch.setattr(claims, "_loaded", watch(claims._loaded))
    assert Pump().drain(None, budget=10) == 20
    assert inside and not any(inside)
    assert Attempt.objects.filter(delivery__webhook=webhook, succeeded=True).count() == 20
    # written by hand (rows.Inserter), read back as the ORM would have written them
    attempt = Attempt.objects.filter(delivery__webhook=webhook).first()
    assert attempt.request_headers["webhook-id"] and attempt.response_status == 200
    assert attempt.started_at.tzinfo is not None and attempt.number == 1
    assert attempt.trigger == "automatic" and attempt.url == receiver.url

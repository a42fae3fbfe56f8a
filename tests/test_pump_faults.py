"""The pump under faults, in this process: its short lease is renewed while it holds a
delivery, a stop request stops its claiming at once, and a database outage is ridden out
(PostgreSQL: connections cut and refused for a few seconds)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction
from django.utils import timezone

from hooks import emit
from hooks.models import Attempt, Delivery
from hooks.tools.receiver import Reply
from hooks.worker import stopping
from hooks.worker.pump import Pump
from tests.conftest import TEST_EVENT, db_thread, make_webhook
from tests.test_e2e_qcluster import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stop_flag():
    stopping.install()
    yield
    stopping.uninstall()


def drain_in_thread(result: list) -> threading.Thread:
    thread = db_thread(lambda: result.append(Pump().drain(None, budget=30)))
    thread.start()
    return thread


def test_a_live_pump_renews_the_short_lease_on_what_it_holds(receiver, settings):
    settings.WEBHOOK_CLAIM_LEASE = 5  # renewed every second
    gate = threading.Event()
    receiver.respond = lambda request: gate.wait(20) and Reply(200)
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    result: list = []
    thread = drain_in_thread(result)
    try:
        assert receiver.wait_for(1, timeout=10)
        first = Delivery.objects.get().claimed_until
        assert first is not None
        assert (first - Delivery.objects.get().created_at).total_seconds() <= 6  # short
        assert wait_until(lambda: Delivery.objects.get().claimed_until > first, timeout=5)
    finally:
        gate.set()
        thread.join()
    assert result == [1] and Delivery.objects.get().status == "succeeded"


def test_a_stop_request_stops_claiming_and_gives_back_what_has_not_gone_out(receiver, stop_flag):
    gate = threading.Event()
    receiver.respond = lambda request: gate.wait(20) and Reply(200)
    make_webhook(receiver.url)
    with transaction.atomic():
        for n in range(40):
            emit(TEST_EVENT, {"n": n})
    result: list = []
    thread = drain_in_thread(result)
    try:
        assert receiver.wait_for(2, timeout=10)  # slow start: two in flight, the rest held
        stopping.request()
        given_back = Delivery.objects.filter(claim_token__isnull=True, attempts=0)
        assert wait_until(lambda: given_back.count() == 38)
    finally:
        gate.set()
        thread.join(timeout=20)
    assert result == [2]  # the two in flight landed and were recorded
    assert len(receiver.requests) == 2
    assert Delivery.objects.filter(status="succeeded").count() == 2
    pending = Delivery.objects.filter(status="pending")
    assert pending.count() == 38
    assert all(d.next_attempt_at <= timezone.now() for d in pending)  # due at once


def test_a_pump_started_while_its_cluster_stops_hands_its_ids_back(receiver, stop_flag):
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    delivery = Delivery.objects.get()
    assert delivery.enqueued_until is not None
    stopping.request()
    assert Pump().drain([str(delivery.pk)]) == 0
    delivery.refresh_from_db()
    assert delivery.enqueued_until is None and delivery.claim_token is None  # for the ticker
    assert receiver.requests == []


def _admin(sql: str, *params) -> None:
    """A statement from another database's session (a database cannot refuse
    connections while one's own session is in it)."""
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(
        dbname="postgres", user=db["USER"] or "postgres", host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432, autocommit=True,
    ) as admin:  # fmt: skip
        admin.execute(sql, params or None)


def _cut_the_database_off(name: str) -> None:
    _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> %s",
        name, connection.cursor().connection.info.backend_pid,
    )  # fmt: skip


def _let_it_back(name: str) -> None:
    _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_the_pump_rides_out_a_database_outage_and_sends_nothing_twice(receiver, caplog):
    """Every connection of the pump is cut and new ones are refused for 3 s mid-drain
    (what a PostgreSQL restart does to it): it backs off, writes when the database is
    back, and every delivery arrives once."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (connections cut from another session)")
    receiver.respond = lambda request: time.sleep(0.01) or Reply(200)
    make_webhook(receiver.url)
    with transaction.atomic():
        for n in range(300):
            emit(TEST_EVENT, {"n": n})
    name = connection.settings_dict["NAME"]
    result: list = []
    thread = drain_in_thread(result)
    try:
        assert receiver.wait_for(30, timeout=20)
        _cut_the_database_off(name)
        time.sleep(3)  # the outage itself: how long the database stays away
    finally:
        _let_it_back(name)
    thread.join(timeout=60)
    assert not thread.is_alive()
    if not result:  # the first pump gave up (it must not): the rest is the next one's
        pytest.fail("the pump did not ride out the outage")
    assert any("trying again" in r.getMessage() for r in caplog.records)  # it was hit
    Pump().drain(None, budget=10)  # anything handed back by the first pump
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == 300 and max(ids.values()) == 1  # none lost, none twice
    assert Delivery.objects.filter(status="succeeded").count() == 300
    assert Attempt.objects.count() == 300


def test_a_pump_goes_on_alone_when_the_broker_refuses_a_helper(receiver, monkeypatch, caplog):
    """More due than one pump holds: it asks the broker for a helper; a broker that is
    down must not end the drain (which would leave its answers unrecorded)."""
    from hooks.outbox import handover

    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    make_webhook(receiver.url)
    with transaction.atomic():
        for n in range(150):
            emit(TEST_EVENT, {"n": n})
    monkeypatch.setattr(handover, "_async", broker_down)
    assert Pump().drain(None, budget=30) == 150
    assert Delivery.objects.filter(status="succeeded").count() == 150
    assert any("another pump" in r.getMessage() for r in caplog.records)

"""The embedded broker's workers are woken on commit, not by their poll; and a retry
leaves when due through the cluster's ticker, without the minute's sweeper."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from django.conf import settings
from django.db import connection, transaction
from django_q.models import Schedule

from hooks import emit
from hooks.models import Delivery
from hooks.tools.receiver import Reply
from hooks.worker import schedules, wakeup
from tests.conftest import TEST_EVENT, make_webhook
from tests.test_e2e_qcluster import ROOT, wait_until, worker_env

ORM_ONLY = pytest.mark.skipif(bool(getattr(settings, "REDIS_URL", "")),
                              reason="Redis wakes its workers itself (a blocking pop)")  # fmt: skip


def test_a_poke_wakes_the_listener_and_a_dead_ones_socket_is_removed(db):
    listener = wakeup.Listener("test-queue")
    try:
        assert listener.wait(0) is False
        woke = []
        waiter = threading.Thread(target=lambda: woke.append(listener.wait(30)))
        waiter.start()
        assert wakeup.poke("test-queue") == 1
        waiter.join(10)
        assert woke == [True]  # long before its 30 s were up
        gone = wakeup.folder() / "test-queue.999999999.sock"  # a process that died untidily
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead.bind(str(gone))
        dead.close()
        assert wakeup.poke("test-queue") == 1 and not gone.exists()
    finally:
        listener.close()


@ORM_ONLY
def test_the_broker_pokes_only_once_the_tasks_row_is_committed(transactional_db):
    from hooks.outbox.handover import _broker

    broker = _broker()
    listener = wakeup.Listener(broker.list_key)
    try:
        with transaction.atomic():
            broker.enqueue("payload")
            assert listener.wait(0) is False  # not yet: a worker would find nothing
        assert listener.wait(5) is True
    finally:
        listener.close()


@ORM_ONLY
@pytest.mark.django_db(transaction=True)
def test_deliveries_and_retries_leave_without_waiting_for_the_poll_or_the_sweeper(
    receiver, tmp_path
):
    """The cluster polls only once an hour here and has no sweeper schedule: the first
    attempt can only start because the commit woke it, and the retry (due 1 s after
    the failure) only because the ticker handed it over and woke it."""
    Schedule.objects.filter(name=schedules.SWEEP).delete()
    answers = iter([500])
    receiver.respond = lambda request: Reply(next(answers, 200))
    env = {**worker_env(), "Q_POLL": "3600", "WEBHOOK_RETRY_SCHEDULE": "0,1"}
    log = (tmp_path / "qcluster.log").open("w")
    proc = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        folder = wakeup.folder()
        assert wait_until(lambda: any(folder.glob(f"{settings.Q_CLUSTER['name']}.*.sock")), 30)
        Schedule.objects.filter(name=schedules.SWEEP).delete()  # migrate-time re-creation
        make_webhook(receiver.url)
        emit(TEST_EVENT, {"n": 1})
        assert receiver.wait_for(2, timeout=20), (tmp_path / "qcluster.log").read_text()[-3000:]
        delivery = Delivery.objects.get()
        assert [r.headers["webhook-id"] for r in receiver.requests] == [str(delivery.pk)] * 2
        assert wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == "succeeded")
        assert not Schedule.objects.filter(name=schedules.SWEEP).exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # its pusher would sleep out its hour otherwise
        proc.wait()
        log.close()
        connection.close()


def test_the_ticker_wakes_when_the_next_delivery_falls_due(db, receiver):
    from datetime import timedelta

    from django.utils import timezone

    from hooks.worker.ticker import TICK, Ticker

    ticker = Ticker()
    assert ticker.pause() == TICK  # nothing waiting
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    Delivery.objects.update(next_attempt_at=timezone.now() + timedelta(seconds=30))
    assert ticker.pause() == TICK  # far off: the next regular look comes first
    Delivery.objects.update(next_attempt_at=timezone.now() + timedelta(milliseconds=300))
    assert 0.1 < ticker.pause() <= 0.3  # then: not up to a second late


def test_the_brokers_writes_queue_for_the_writers_lock_but_never_inside_a_transaction(
    transactional_db, monkeypatch
):
    """Outside a transaction a task's row is written under the writers' lock (not in
    SQLite's busy handler beside the pumps); inside one (django-q2's scheduler) SQLite's
    lock is held already and waiting for the writers' lock could deadlock with a pump."""
    real, entered = wakeup.writelock.serialized, []

    def spy(*args):
        entered.append(connection.in_atomic_block)
        return real(*args)

    monkeypatch.setattr(wakeup.writelock, "serialized", spy)
    broker = wakeup.WakeableORM(list_key="lock-test")
    broker.enqueue("outside")
    with transaction.atomic():
        broker.enqueue("inside")
    assert entered == [False]
    taken = broker._take()  # (django-q2 takes Q_BULK tasks at a time: one by default)
    assert taken and entered == [False] * (1 + len(taken))
    broker.acknowledge(taken[0][0])
    assert entered == [False] * (2 + len(taken))

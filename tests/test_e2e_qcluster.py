"""End to end: a real `qcluster` process delivers a committed event to a real receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from hooks import emit
from hooks.models import Delivery
from hooks.tools.receiver import Reply
from tests.conftest import LOOPBACK, TEST_EVENT, make_webhook, verify

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The test database, as the worker process must see it."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


def worker_env() -> dict[str, str]:
    """The environment of a worker process started by a test: the test database, the
    test's broker, loopback receivers allowed, two workers per cluster."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "WEBHOOK_ALLOWED_NETWORKS": ",".join(LOOPBACK),
        "WEBHOOK_USER_ALLOWED_NETWORKS": ",".join(LOOPBACK),
        "REDIS_URL": getattr(settings, "REDIS_URL", ""),
        "Q_WORKERS": "2",
        "JOB_WORKERS": "2",
    }


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.fixture
def cluster_env() -> dict[str, str]:
    """What a test changes in its cluster's environment (parametrize it): nothing."""
    return {}


@pytest.fixture
def qcluster(tmp_path, cluster_env):
    env = {**worker_env(), **cluster_env}
    log = (tmp_path / "qcluster.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.send_signal(signal.SIGTERM)  # the main process only: a group kill can hang it
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    print((tmp_path / "qcluster.log").read_text()[-5000:])  # shown when a test fails
    connection.close()


def test_qcluster_delivers_a_committed_event(receiver, qcluster):
    webhook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"hello": "world"})
    assert receiver.wait_for(1, timeout=30), "the worker sent nothing"
    assert verify(webhook, receiver.requests[0]) == {"hello": "world"}
    delivery = Delivery.objects.get()
    assert wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == "succeeded")
    attempt = delivery.attempt_set.get()
    assert attempt.response_status == 200 and attempt.succeeded
    assert receiver.requests[0].headers["webhook-id"] == str(delivery.pk)
    assert len(receiver.requests) == 1


def test_events_emitted_in_the_jobs_cluster_go_to_the_delivery_queue():
    """A job worker's process has Q_CLUSTER_NAME=jobs; its events' pump tasks must still
    go to the delivery cluster's queue, not keep a job worker busy."""
    probe = (
        "import django; django.setup(); "
        "from hooks.outbox.handover import _broker; print(_broker().list_key)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**worker_env(), "Q_CLUSTER_NAME": "jobs", "DJANGO_SETTINGS_MODULE": "webhookhub.settings"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    from django_q.brokers import get_broker

    delivery_queue = get_broker(settings.Q_CLUSTER["name"]).list_key  # as the broker names it
    assert out.stdout.split()[-1] == delivery_queue and "jobs" not in delivery_queue


@pytest.mark.parametrize("cluster_env", [{"WEBHOOK_RETRY_SCHEDULE": "0,1,1,1,1,1,1,1"}])
def test_an_ordered_webhook_gets_each_jobs_events_in_order_through_an_outage(
    receiver, qcluster, cluster_env
):
    """The receiver is down for its first requests, then back; the cluster retries a
    second later. Each job's events are sent one at a time: per subject, what was sent
    (failed attempts included) never goes back, and every event arrives once accepted."""
    outage, lock = {"left": 6}, threading.Lock()

    def respond(request) -> Reply:
        with lock:
            down = outage["left"] > 0
            outage["left"] -= down
        return Reply(503 if down else 200)

    receiver.respond = respond
    webhook = make_webhook(receiver.url, ordered=True)
    states = ("queued", "started", "progress", "finished")
    for state in states:  # each in its own transaction, handed to the running cluster
        for job in range(3):
            emit(TEST_EVENT, {"job": job, "state": state}, subject=f"job:{job}")
    done = lambda: Delivery.objects.filter(status="succeeded").count() == 12  # noqa: E731
    assert wait_until(done, timeout=60), list(Delivery.objects.values_list("status", flat=True))
    sent: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for request in receiver.requests:
        payload = verify(webhook, request)  # signed as every delivery is
        sequence = int(request.headers["X-Webhookhub-Sequence"])
        sent[request.headers["X-Webhookhub-Subject"]].append((sequence, payload["state"]))
    assert len(receiver.requests) == 12 + 6  # each event accepted once, after the outage's 6
    for job in range(3):
        order = sent[f"job:{job}"]
        assert order == sorted(order), order  # a retry is never overtaken
        assert sorted(set(order)) == list(enumerate(states, start=1))

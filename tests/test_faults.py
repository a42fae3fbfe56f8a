"""Faults injected into real `qcluster` processes, counted at a real receiver: a worker
tree killed mid-drain, SIGTERM mid-drain, and a short retry (the ticker's job).
Duplicates may only ever arrive under the same `webhook-id`; nothing may be lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction

from hooks import emit
from hooks.models import Attempt, Delivery
from hooks.tools.receiver import Reply
from tests.conftest import ROOT, TEST_EVENT, make_webhook
from tests.test_e2e_qcluster import wait_until, worker_env
from tests.test_runhub import alive, descendants

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = 5  # seconds: WEBHOOK_CLAIM_LEASE of the clusters started here


class Cluster:
    """A `manage.py qcluster` process in a session of its own, its output kept."""

    def __init__(self, tmp_path, name: str, **env: str):
        self.log_path = tmp_path / f"{name}.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT,
            env={**worker_env(), "WEBHOOK_CLAIM_LEASE": str(LEASE), **env},
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def kill_tree(self) -> None:
        """kill -9 of every process of the cluster at once."""
        tree = descendants(self.proc.pid) | {self.proc.pid}
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        assert wait_until(lambda: not alive(tree), timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        print(self.log_path.read_text()[-4000:])  # shown when a test fails


@pytest.fixture
def clusters(tmp_path):
    started: list[Cluster] = []

    def start(name: str = "qcluster", **env: str) -> Cluster:
        cluster = Cluster(tmp_path, f"{name}-{len(started)}", **env)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.close()
    connection.close()


def emit_many(n: int) -> None:
    with transaction.atomic():
        for i in range(n):
            emit(TEST_EVENT, {"n": i})


def counted(receiver) -> Counter:
    return Counter(r.headers["webhook-id"] for r in receiver.requests)


def all_succeeded(n: int):
    return lambda: Delivery.objects.filter(status="succeeded").count() == n


def test_a_killed_worker_tree_gives_up_its_claims_within_the_lease(receiver, clusters):
    receiver.respond = lambda request: time.sleep(0.05) or Reply(200)
    make_webhook(receiver.url)
    emit_many(200)
    first = clusters()
    assert receiver.wait_for(20, timeout=30)
    first.kill_tree()
    killed_at = time.monotonic()
    held = {
        str(pk)
        for pk in Delivery.objects.filter(claim_token__isnull=False).values_list("pk", flat=True)
    }
    assert held, "the cluster held nothing when it was killed"
    received_before = len(receiver.requests)
    clusters()  # what a supervisor does: start it again
    assert wait_until(all_succeeded(200), timeout=60), "not everything was delivered"
    ids = counted(receiver)
    assert {str(pk) for pk in Delivery.objects.values_list("pk", flat=True)} == set(ids)
    resent = [r for r in receiver.requests[received_before:] if r.headers["webhook-id"] in held]
    assert resent and max(r.received_at for r in resent) - killed_at < LEASE + 10
    # Only what was held (in flight, or answered and not yet recorded) can come twice.
    assert {i for i, seen in ids.items() if seen > 1} <= held


def test_sigterm_stops_the_cluster_within_the_slowest_request_and_loses_nothing(receiver, clusters):
    hold = 2.0
    receiver.respond = lambda request: time.sleep(hold) or Reply(200)
    make_webhook(receiver.url)
    emit_many(150)
    cluster = clusters(Q_WORKERS="2")
    assert receiver.wait_for(2, timeout=30)
    cluster.proc.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    cluster.proc.wait(timeout=30)
    took = time.monotonic() - stopped_at
    assert took < hold + 2 + 1.5, f"the cluster took {took:.1f} s to stop"
    # Everything sent was recorded; everything else is free for the next worker.
    sent = len(receiver.requests)
    assert Attempt.objects.count() == sent
    assert not Delivery.objects.filter(claim_token__isnull=False).exists()
    assert Delivery.objects.filter(status="pending", attempts=0).count() == 150 - sent
    receiver.respond = lambda request: Reply(200)
    clusters()
    assert wait_until(all_succeeded(150), timeout=60)
    assert len(counted(receiver)) == 150 and max(counted(receiver).values()) == 1


def test_a_short_retry_leaves_within_about_a_second_of_its_due_time(receiver, clusters):
    seen: Counter = Counter()
    lock = threading.Lock()

    def first_fails(request):
        with lock:
            seen[request.headers["webhook-id"]] += 1
            return Reply(500) if seen[request.headers["webhook-id"]] == 1 else Reply(200)

    receiver.respond = first_fails
    make_webhook(receiver.url)
    emit_many(5)
    clusters(WEBHOOK_RETRY_SCHEDULE="0,3")
    assert wait_until(all_succeeded(5), timeout=30)
    by_id: dict[str, list[float]] = {}
    for request in receiver.requests:
        by_id.setdefault(request.headers["webhook-id"], []).append(request.received_at)
    gaps = [later - first for first, later in by_id.values()]
    assert len(gaps) == 5
    # Due 3 s (±20 % jitter) after the first answer: at most 3.6 s plus about a second.
    assert max(gaps) < 3.6 + 1.5, gaps

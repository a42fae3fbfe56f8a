"""Jobs end to end: real `runjobs` (the jobs cluster) and `qcluster` (deliveries)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from accounts.models import ApiToken
from hooks import slots
from hooks.tools.receiver import Receiver, Reply
from jobs.models import Job, QueueState
from tests.conftest import ROOT
from tests.test_e2e_qcluster import wait_until, worker_env

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


def start(args: list[str], log_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=worker_env(),
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT)  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def token():
    user = User.objects.create_user("e2e@example.com", "e2e@example.com", "pw")
    return ApiToken.issue(user, "e2e")[1]


@pytest.fixture
def processes(tmp_path):
    started = []

    def run(*args: str, name: str = "proc") -> subprocess.Popen:
        proc = start(list(args), tmp_path / f"{name}-{len(started)}.log")
        started.append(proc)
        return proc

    yield run
    for proc in started:
        stop(proc)
    for log in sorted(tmp_path.glob("*.log")):
        print(log.name, log.read_text()[-3000:])
    connection.close()


def test_run_and_runsync_with_real_workers(live_server, token, receiver, processes):
    import requests

    processes("qcluster", name="deliveries")
    processes("runjobs", name="jobs")
    headers = {"Authorization": f"Bearer {token}"}
    response = requests.post(f"{live_server.url}/v2/echo/run",
                             json={"input": {"prompt": "astronaut"}, "webhook": receiver.url},
                             headers=headers, timeout=10)  # fmt: skip
    job_id = response.json()["id"]
    assert receiver.wait_for(1, timeout=60), "no callback"
    body = json.loads(receiver.requests[0].body)
    assert (
        body["id"] == job_id
        and body["status"] == "COMPLETED"
        and body["output"] == {"prompt": "astronaut"}
    )
    assert set(body) == {"id", "status", "delayTime", "executionTime", "input", "output", "webhook"}
    sync = requests.post(f"{live_server.url}/v2/sleep/runsync?wait=60000",
                         json={"input": {"seconds": 0.2}}, headers=headers, timeout=70)  # fmt: skip
    assert sync.json()["status"] == "COMPLETED" and sync.json()["output"] == {"seconds": 0.2}


def test_the_stock_runpod_sdk_runs_streams_and_cancels(live_server, token, processes):
    """RunPod's own Python client, unchanged, pointed at the hub."""
    import runpod

    processes("runjobs", name="jobs")
    runpod.api_key, runpod.endpoint_url_base = token, f"{live_server.url}/v2"
    echo = runpod.Endpoint("echo")
    job = echo.run({"prompt": "astronaut"})
    assert job.output(timeout=60) == {"prompt": "astronaut"}
    assert job.status() == "COMPLETED"
    assert echo.run_sync({"prompt": "fast"}, timeout=60) == {"prompt": "fast"}
    streamed = runpod.Endpoint("words").run({"text": "one small step", "delay": 0.3})
    assert list(streamed.stream()) == ["one", "small", "step"]
    assert streamed.output(timeout=30) == ["one", "small", "step"]
    slow = runpod.Endpoint("sleep").run({"seconds": 60})
    assert wait_until(lambda: slow.status() == "IN_PROGRESS", timeout=30)
    assert slow.cancel()["status"] == "CANCELLED"
    health = runpod.Endpoint("sleep").health()
    assert health["jobs"]["cancelled"] == 1
    assert health["workers"] == {"idle": 2, "running": 0}  # JOB_WORKERS=2, all free again


def test_server_start_and_shutdown_hooks(processes):
    with Receiver() as rx:
        slots.save("server_start", rx.url)
        slots.save("server_shutdown", rx.url)
        jobs = processes("runjobs", name="jobs")
        assert rx.wait_for(1, timeout=60)
        stop(jobs)
        assert rx.wait_for(2, timeout=10)
        events = [r.headers["X-Webhookhub-Event"] for r in rx.requests]
        assert events == ["swarm.server_start", "swarm.server_shutdown"]


def test_two_job_clusters_send_each_queue_transition_once(token, processes):
    from jobs import lifecycle
    from jobs.models import Endpoint

    QueueState.load()
    QueueState.objects.filter(pk=1).update(queue_end_delay=0.5)
    with Receiver() as start_rx, Receiver() as end_rx:
        slots.save("queue_start", start_rx.url)
        slots.save("queue_end", end_rx.url)
        processes("runjobs", name="jobs-a")
        processes("runjobs", name="jobs-b")
        user = User.objects.get(email="e2e@example.com")
        endpoint = Endpoint.objects.get(name="sleep")
        for _ in range(8):
            lifecycle.submit(Job(endpoint=endpoint, user=user, input={"seconds": 0.3}))
        assert wait_until(lambda: not Job.objects.exclude(status="COMPLETED").exists(), timeout=90)
        assert end_rx.wait_for(1, timeout=30)
        assert wait_until(lambda: QueueState.load().state == "idle", timeout=10)
        assert len(start_rx.requests) == 1 and len(end_rx.requests) == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopping_job_cluster_gives_a_running_job_back(token, processes, signum):
    """SIGTERM to runjobs while a job runs: Server Shutdown is sent first (the job still
    running), then the job gets JOB_STOP_GRACE, goes back to the queue (not left
    IN_PROGRESS), the cluster is gone, and Queue End is sent. kill -9
    of runjobs: its cluster hears of it from the kernel and does the same (nobody is left
    to send the hooks). The next runjobs runs the job to the end."""
    from jobs import lifecycle
    from jobs.management.commands.runjobs import CLUSTER_GRACE
    from jobs.models import Endpoint
    from tests.test_runhub import alive, descendants

    user = User.objects.get(email="e2e@example.com")
    job = lifecycle.submit(
        Job(endpoint=Endpoint.objects.get(name="sleep"), user=user, input={"seconds": 120})
    )
    told = threading.Event()
    with Receiver() as rx:
        rx.respond = lambda request: told.wait(30) and Reply(200)
        slots.save("queue_end", rx.url)
        slots.save("server_shutdown", rx.url)
        jobs = processes("runjobs", name="jobs")
        assert wait_until(lambda: Job.objects.get(pk=job.pk).status == "IN_PROGRESS", timeout=60)
        tree = descendants(jobs.pid)
        jobs.send_signal(signum)
        if signum == signal.SIGTERM:  # Server Shutdown, held: the job still runs meanwhile
            assert rx.wait_for(1, timeout=30)
            assert Job.objects.get(pk=job.pk).status == "IN_PROGRESS"
        told.set()
        jobs.wait(timeout=CLUSTER_GRACE + 10)
        assert wait_until(lambda: not alive(tree), timeout=CLUSTER_GRACE + 5), "processes left"
        said = [r.headers["X-Webhookhub-Event"] for r in rx.requests]
        # SwarmUI's order (Program.Shutdown): Server Shutdown, the backends stop, Queue End.
        stopped = ["swarm.server_shutdown", "swarm.queue_end"]
        assert said == (stopped if signum == signal.SIGTERM else [])
    job.refresh_from_db()
    assert job.status == "IN_QUEUE" and job.started_at is None
    Job.objects.filter(pk=job.pk).update(input={"seconds": 0.1})  # the next run is quick
    processes("runjobs", name="jobs-again")
    assert wait_until(lambda: Job.objects.get(pk=job.pk).status == "COMPLETED", timeout=60)

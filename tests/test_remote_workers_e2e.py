"""The stock runpod-python worker (`runpod.serverless.start`), as its own process on
the hub's environment lines alone, serving jobs submitted with the stock runpod client."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from hooks.worker.attempt import deliver_due
from jobs import remote
from jobs.models import Endpoint, Job, WorkerKey
from tests.conftest import ROOT
from tests.test_e2e_qcluster import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.fixture
def workers(tmp_path, live_server, settings, transactional_db):
    settings.JOB_TAKE_WAIT = 1  # the SDK asks again at once after a 204
    started = []

    def start(endpoint: str, kind: str, pod: str, key: str) -> subprocess.Popen:
        lines = remote.environment(live_server.url, endpoint, key)
        lines["RUNPOD_POD_ID"] = pod
        env = {"PATH": os.environ["PATH"], **lines, "REMOTE_HANDLER": kind,
               "RUNPOD_PING_INTERVAL": "1000"}  # fmt: skip
        log = (tmp_path / f"{pod}.log").open("w")
        proc = subprocess.Popen([sys.executable, "tests/runpod_remote_worker.py"], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        started.append(proc)
        return proc

    yield start
    for proc in started:
        kill(proc)
    for log in sorted(tmp_path.glob("*.log")):
        print(log.name, log.read_text()[-3000:])


@pytest.fixture
def client_sdk(live_server, ann):
    import runpod

    runpod.api_key = ApiToken.issue(ann, "sdk")[1]
    runpod.endpoint_url_base = f"{live_server.url}/v2"
    return runpod


def test_a_stock_worker_serves_results_errors_streams_and_callbacks(workers, client_sdk, receiver):
    gpu = Endpoint.objects.create(name="gpu", handler="")
    words = Endpoint.objects.create(name="words-remote", handler="", aggregate_stream=True)
    workers("gpu", "plain", "pod-plain", WorkerKey.issue("gpu", gpu)[1])
    workers("words-remote", "stream", "pod-stream", WorkerKey.issue("words", words)[1])

    job = client_sdk.Endpoint("gpu").run(
        {"input": {"prompt": "astronaut"}, "webhook": receiver.url}
    )
    assert job.output(timeout=60) == {"prompt": "astronaut", "pod": "pod-plain"}
    assert wait_until(lambda: deliver_due() or receiver.requests, timeout=30)
    callback = json.loads(receiver.requests[0].body)
    assert callback["id"] == job.job_id and callback["status"] == "COMPLETED"

    failed = client_sdk.Endpoint("gpu").run({"fail": True})
    assert wait_until(lambda: failed.status() == "FAILED", timeout=60)
    error = json.loads(Job.objects.get(pk=failed.job_id).error)
    assert error["error_message"] == "the worker was told to fail"
    assert error["worker_id"] == "pod-plain"

    streamed = client_sdk.Endpoint("words-remote").run({"text": "one small step"})
    assert list(streamed.stream()) == ["one", "small", "step"]
    assert streamed.output(timeout=30) == ["one", "small", "step"]

    health = client_sdk.Endpoint("gpu").health()
    assert health["workers"] == {"idle": 2, "running": 0}


def test_remote_jobs_send_swarmuis_queue_hooks_as_in_process_jobs_do(workers, client_sdk):
    """Queue Start before the first remote job starts, Every Job for each, and Queue End
    once the queue is idle again (the ticker runjobs runs), each once."""
    import threading

    from hooks import slots
    from hooks.tools.receiver import Receiver
    from jobs import queue
    from jobs.models import QueueState

    QueueState.load()
    QueueState.objects.filter(pk=1).update(queue_end_delay=0.2)
    stop = threading.Event()
    ticker = threading.Thread(target=queue.run_ticker, args=(stop,))
    ticker.start()
    try:
        with Receiver() as start_rx, Receiver() as end_rx, Receiver() as every_rx:
            slots.save("queue_start", start_rx.url)
            slots.save("queue_end", end_rx.url)
            slots.save("every_job", every_rx.url, '{"id": "%id%", "status": "%status%"}')
            gpu = Endpoint.objects.create(name="gpu", handler="")
            workers("gpu", "plain", "pod-hooks", WorkerKey.issue("gpu", gpu)[1])
            jobs = [client_sdk.Endpoint("gpu").run({"prompt": str(n)}) for n in range(2)]
            assert [job.output(timeout=60)["prompt"] for job in jobs] == ["0", "1"]
            assert end_rx.wait_for(1, timeout=30)
            first_start = min(Job.objects.values_list("started_at", flat=True))
            assert len(start_rx.requests) == 1
            assert start_rx.requests[0].received_at <= first_start.timestamp()
            assert wait_until(lambda: deliver_due() or len(every_rx.requests) == 2, timeout=30)
            every = sorted(json.loads(r.body)["id"] for r in every_rx.requests)
            assert every == sorted(job.job_id for job in jobs)
            assert len(end_rx.requests) == 1
    finally:
        stop.set()
        ticker.join(30)


def test_a_killed_workers_job_is_taken_by_a_second_worker(workers, client_sdk, settings, tmp_path):
    settings.JOB_REMOTE_WORKER_LOST = 3  # the workers ping every second here
    gpu = Endpoint.objects.create(name="gpu", handler="")
    key = WorkerKey.issue("gpu", gpu)[1]
    first = workers("gpu", "plain", "pod-first", key)
    release = tmp_path / "release"
    job = client_sdk.Endpoint("gpu").run({"prompt": "again", "release": str(release)})
    assert wait_until(lambda: Job.objects.get(pk=job.job_id).progress == "waiting", timeout=60)
    assert job.status() == "IN_PROGRESS"
    kill(first)  # the whole worker, its ping process too (as a machine going away)
    workers("gpu", "plain", "pod-second", key)
    assert wait_until(
        lambda: Job.objects.filter(pk=job.job_id, worker__pod_id="pod-second").exists(),
        timeout=60,
    )
    release.touch()
    assert job.output(timeout=60) == {"prompt": "again", "pod": "pod-second"}
    [(_, text)] = Job.objects.get(pk=job.job_id).history_rows
    assert "'pod-first' (key 'gpu') was lost" in text


def test_a_worker_restarted_under_its_pod_id_runs_its_lost_job_again_at_once(
    workers, client_sdk, tmp_path
):
    """The container restarts with the same RUNPOD_POD_ID and keeps pinging: it is never
    lost, but its first take says job_in_progress=0, so the job it had runs again now,
    not after JOB_REMOTE_WORKER_LOST (30 s here) and not never."""
    gpu = Endpoint.objects.create(name="gpu", handler="")
    key = WorkerKey.issue("gpu", gpu)[1]
    first = workers("gpu", "plain", "pod-same", key)
    release = tmp_path / "release"
    job = client_sdk.Endpoint("gpu").run({"prompt": "again", "release": str(release)})
    assert wait_until(lambda: Job.objects.get(pk=job.job_id).progress == "waiting", timeout=60)
    kill(first)
    Job.objects.filter(pk=job.job_id).update(started_at=timezone.now() - timedelta(seconds=5))
    workers("gpu", "plain", "pod-same", key)
    assert wait_until(lambda: Job.objects.get(pk=job.job_id).history, timeout=25)
    release.touch()
    assert job.output(timeout=60) == {"prompt": "again", "pod": "pod-same"}
    [(_, text)] = Job.objects.get(pk=job.job_id).history_rows
    assert "job_in_progress=0" in text


def test_a_cancel_stops_the_remote_handler(workers, client_sdk):
    """The worker runs one job at a time: the next job runs only once the cancelled
    one's handler (sleeping a minute) was stopped through the stop channel."""
    gpu = Endpoint.objects.create(name="gpu", handler="")
    workers("gpu", "async", "pod-async", WorkerKey.issue("gpu", gpu)[1])
    slow = client_sdk.Endpoint("gpu").run({"seconds": 600})
    assert wait_until(lambda: slow.status() == "IN_PROGRESS", timeout=60)
    assert slow.cancel()["status"] == "CANCELLED"
    quick = client_sdk.Endpoint("gpu").run({"seconds": 0})
    assert quick.output(timeout=60) == {"slept": 0}
    assert Job.objects.get(pk=slow.job_id).status == Job.Status.CANCELLED

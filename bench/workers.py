"""The remote-workers measure: runpod-python workers polling the hub's web server
(gunicorn, as runhub starts it) for an endpoint's jobs.

Each worker is a thread that follows runpod-python's own loop (serverless/modules/
rp_scale.py, concurrency 1): a take (`job-take/<pod>?&job_in_progress=0`), again at
once after a 204, after 5 s after a 429; a job is answered at once on job-done; a ping
every 10 s. Threads rather than 50 SDK processes: the hub sees the same requests at the
same rate, and this machine's two cores are not spent importing the SDK 50 times.

Idle: the web server's CPU and the database's transactions per second while the
workers find nothing. Burst: jobs submitted in one transaction, the time until every
one is done, how they spread over the workers and how many were handed out twice.
Imported by scenarios.py once Django is set up."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import urllib3
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from jobs import lifecycle
from jobs.models import Endpoint, Job, RemoteWorker, WorkerKey

ENDPOINT = "bench-remote"
PING_EVERY = 10.0  # runpod-python's RUNPOD_PING_INTERVAL default
DEBOUNCE = 5.0  # runpod-python waits this long after a 429
TICK = os.sysconf("SC_CLK_TCK")


class Poller(threading.Thread):
    """One worker, as runpod-python's JobScaler with concurrency 1."""

    def __init__(self, base: str, key: str, pod: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base, self.pod, self.stop = base, pod, stop
        self.http = urllib3.PoolManager(maxsize=2, retries=False)
        self.headers = {"Authorization": key, "Content-Type": "application/json"}
        self.answers: Counter[int] = Counter()
        self.taken: list[str] = []

    def run(self) -> None:
        take = f"{self.base}/job-take/{self.pod}?&job_in_progress=0"
        while not self.stop.is_set():
            try:
                answer = self.http.request("GET", take, headers=self.headers, timeout=30)
            except urllib3.exceptions.HTTPError:
                self.stop.wait(1)
                continue
            self.answers[answer.status] += 1
            if answer.status == 429:
                self.stop.wait(DEBOUNCE)
            elif answer.status == 200:
                self.done(json.loads(answer.data))

    def done(self, job: dict) -> None:
        self.taken.append(job["id"])
        url = f"{self.base}/job-done/{self.pod}/{job['id']}?&isStream=false"
        body = json.dumps({"output": job["input"]}).encode()
        self.http.request("POST", url, body=body, headers=self.headers, timeout=30)

    def ping(self) -> None:
        url = f"{self.base}/ping/{self.pod}?runpod_version=1.7"
        self.http.request("GET", url, headers=self.headers, timeout=30)


def _pinger(pollers: list[Poller], stop: threading.Event) -> threading.Thread:
    """Each worker pings every PING_EVERY seconds, spread over the interval."""

    def run() -> None:
        step = PING_EVERY / len(pollers)
        while not stop.is_set():
            for poller in pollers:
                if stop.wait(step):
                    return
                try:
                    poller.ping()
                except urllib3.exceptions.HTTPError:
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def _transactions() -> int | None:
    """The database's committed and rolled-back transactions so far (PostgreSQL; each
    statement outside a transaction is one)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = "
            "current_database()"
        )
        return cursor.fetchone()[0]


def _setup() -> tuple[str, object]:
    Job.objects.filter(endpoint__name=ENDPOINT).delete()
    RemoteWorker.objects.filter(key__name="bench").delete()
    WorkerKey.objects.filter(name="bench").delete()
    endpoint, _ = Endpoint.objects.get_or_create(name=ENDPOINT, defaults={"handler": ""})
    user, _ = get_user_model().objects.get_or_create(
        username="bench-remote", defaults={"email": "bench-remote@example.com"}
    )
    return WorkerKey.issue("bench", endpoint)[1], (endpoint, user)


def _burst(endpoint, user, count: int) -> float:
    """`count` jobs, committed at once; returns the moment they were."""
    with transaction.atomic():
        for n in range(count):
            lifecycle.submit(Job(endpoint=endpoint, user=user, input={"n": n}))
    return time.monotonic()


def measure(start, wait_until, free_port, workers: int, idle_s: float, jobs: int) -> dict:
    """`start(command, ready)` starts a process of the hub (`worker_pids()`, `kill()`)."""
    key, (endpoint, user) = _setup()
    port = free_port()
    web = start([sys.executable, "-m", "gunicorn", "webhookhub.wsgi", "--bind",
                 f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--log-level",
                 "info"], "Booting worker")  # fmt: skip
    stop = threading.Event()
    base = f"http://127.0.0.1:{port}/v2/{ENDPOINT}"
    pollers = [Poller(base, key, f"pod-{n}", stop) for n in range(workers)]
    try:
        for poller in pollers:
            poller.start()
        _pinger(pollers, stop)
        wait_until(lambda: RemoteWorker.objects.filter(key__name="bench").count() == workers, 60)
        pids = [web.proc.pid, *web.worker_pids()]
        asked = sum(sum(p.answers.values()) for p in pollers)
        cpu, xacts, began = _cpu_seconds(pids), _transactions(), time.monotonic()
        time.sleep(idle_s)  # the idle load is what is measured: nothing to await
        spent = time.monotonic() - began
        idle_cpu = (_cpu_seconds(pids) - cpu) / spent
        idle_tps = None if xacts is None else (_transactions() - xacts) / spent
        idle_asks = (sum(sum(p.answers.values()) for p in pollers) - asked) / spent
        committed = _burst(endpoint, user, jobs)
        done = Job.objects.filter(endpoint=endpoint, status=Job.Status.COMPLETED)
        wait_until(lambda: done.count() == jobs, 600)
        burst_s = time.monotonic() - committed
    finally:
        stop.set()
        web.kill()  # not stop(): its held takes would keep it up for JOB_TAKE_WAIT
    taken = Counter(job for p in pollers for job in p.taken)
    per_worker = [len(p.taken) for p in pollers]
    return {
        "remote_workers": workers,
        "remote_idle_cpu_pct": 100 * idle_cpu,
        "remote_idle_tps": idle_tps,
        "remote_idle_asks": idle_asks,
        "remote_burst_jobs": jobs,
        "remote_burst_s": burst_s,
        "remote_burst_spread": (min(per_worker), max(per_worker)),
        "remote_burst_twice": sum(n > 1 for n in taken.values()),
    }

"""The big-job measure: one job of RunPod's /run payload limit (10 MB) through the hub's
own processes, the web server (gunicorn, as runhub starts it), the job workers
(runjobs) and the delivery workers (qcluster). POST /v2/echo/run with a 10 MB input and
a callback URL; the echo handler returns it; the callback carries both (20 MB). Its time
from the POST to the callback's arrival, and the peak memory (VmHWM) of the largest
process of each. Imported by scenarios.py once Django is set up."""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time

import urllib3
from django.contrib.auth import get_user_model

from accounts.models import ApiToken

MiB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _token() -> str:
    user, _ = get_user_model().objects.get_or_create(
        username="bench-jobs", defaults={"email": "bench-jobs@example.com"}
    )
    ApiToken.objects.filter(user=user, name="bench").delete()  # one of an earlier run
    return ApiToken.issue(user, "bench")[1]


def _body(size: int, callback: str) -> bytes:
    """A /run body whose input is `size` bytes of JSON (random base64, as an image is)."""
    length = size - len('{"data":""}')
    data = base64.b64encode(os.urandom(length * 3 // 4 + 3)).decode()[:length]
    return json.dumps({"input": {"data": data}, "webhook": callback}).encode()


def measure(start, callback: str, arrived, wait_until, size: int) -> dict:
    """`start(command, ready)`: a started process of the hub (its `memory_mb(field)` the
    largest of its tree's, `stop()`); `arrived()`: requests the callback URL has had."""
    port = _free_port()
    web = [sys.executable, "-m", "gunicorn", "webhookhub.wsgi", "--bind", f"127.0.0.1:{port}",
           "--workers", "2", "--threads", "4", "--log-level", "info"]  # fmt: skip
    manage = [sys.executable, "manage.py"]
    started = {}
    try:
        started["web"] = start(web, "Booting worker")
        started["jobs"] = start([*manage, "runjobs"], "running.")
        started["deliveries"] = start([*manage, "qcluster"], "running.")
        idle = {name: proc.memory_mb("VmRSS") for name, proc in started.items()}
        body, before = _body(size, callback), arrived()
        headers = {"Authorization": f"Bearer {_token()}", "Content-Type": "application/json"}
        began = time.monotonic()
        answer = urllib3.request(
            "POST", f"http://127.0.0.1:{port}/v2/echo/run", body=body, headers=headers
        )
        answered = time.monotonic() - began
        if answer.status != 200:
            raise RuntimeError(f"/run answered {answer.status}: {answer.data[:300]!r}")
        wait_until(lambda: arrived() > before, timeout=600, interval=0.02)
        return {
            "big_job_mb": size / MiB,
            "big_job_s": time.monotonic() - began,
            "big_job_run_s": answered,
            "big_job_idle_mb": idle,
            "big_job_peak_mb": {name: proc.memory_mb("VmHWM") for name, proc in started.items()},
        }
    finally:
        for proc in started.values():
            proc.stop()

"""`manage.py runhub` (what `make run` runs) as processes: every stopping signal, and
runhub's own death, stop all its children; a busy port starts nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_e2e_qcluster import worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def start_hub(port: int) -> subprocess.Popen:
    hub = subprocess.Popen(
        [sys.executable, "manage.py", "runhub", "--port", str(port)], cwd=ROOT,
        env={**worker_env(), "JOB_WORKERS": "1", "Q_WORKERS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def answering() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    assert wait_until(answering, 60), "the web server did not come up"
    return hub


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_every_child_stops_when_runhub_is_stopped_or_dies(signum):
    hub = start_hub(free_port())
    # gunicorn and its workers, qcluster's, runjobs' and its cluster's
    assert wait_until(lambda: len(descendants(hub.pid)) >= 8, 60)
    time.sleep(1)  # let the clusters finish starting their workers
    children = descendants(hub.pid)
    os.kill(hub.pid, signum)
    hub.wait(timeout=45)
    assert wait_until(lambda: not alive(children), 45), f"left running: {alive(children)}"


def test_a_stopping_signal_sent_twice_stops_gracefully_once():
    """`kill -TERM -- -PGID` of `make run`: make forwards SIGTERM to runhub, which gets it
    from the group too; the second must not cut the graceful stop short."""
    hub = start_hub(free_port())
    assert wait_until(lambda: len(descendants(hub.pid)) >= 8, 60)
    children = descendants(hub.pid)
    os.kill(hub.pid, signal.SIGTERM)
    time.sleep(0.05)
    os.kill(hub.pid, signal.SIGTERM)
    output, _ = hub.communicate(timeout=60)
    assert hub.returncode == 0 and "Stopping…" in output
    assert "is running on http://localhost:" in output  # as the login line spells it
    assert "Traceback" not in output and "Stop:" not in output, output[-2000:]
    assert wait_until(lambda: not alive(children), 45), f"left running: {alive(children)}"


def test_a_busy_port_starts_nothing_and_says_so():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "manage.py", "runhub", "--port", str(port)], cwd=ROOT,
            env=worker_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode != 0 and time.monotonic() - started < 30
    assert f"127.0.0.1:{port} is already in use" in out.stderr
    assert "is running" not in out.stdout


def test_when_a_child_dies_runhub_says_which_and_stops_the_rest():
    hub = start_hub(free_port())
    children = descendants(hub.pid)
    web = next(pid for pid in children if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
               and os.getpgid(pid) == pid)  # fmt: skip
    os.killpg(web, signal.SIGKILL)
    output, _ = hub.communicate(timeout=45)
    assert hub.returncode != 0 and "The web server (gunicorn) exited" in output
    assert wait_until(lambda: not alive(children), 45), f"left running: {alive(children)}"

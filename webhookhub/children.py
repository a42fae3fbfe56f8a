"""Child processes that never outlive the process that started them (runhub, runjobs)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent process dies (Linux; elsewhere a no-op).
    Used as `preexec_fn`, and by a process for itself."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def start(command: list[str], **kwargs) -> subprocess.Popen:
    """A child in a session of its own (a Ctrl-C reaches only its parent, which stops it
    by its main process: signalling qcluster's whole group can leave it hanging) that
    gets SIGTERM when its parent dies."""
    return subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent, **kwargs)


def stop(children: list[subprocess.Popen], grace: float) -> list[subprocess.Popen]:
    """SIGTERM to each child's main process at once, up to `grace` seconds in all for
    them to stop, then SIGKILL to each whole process group (their workers too, whatever
    is left). Returns the children that did not stop in time."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    late = []
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            late.append(child)
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        child.wait()
    return late

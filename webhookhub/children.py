"""Child processes that never outlive the process that started them (runhub, runjobs)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess

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


def stop(child: subprocess.Popen, grace: float) -> bool:
    """SIGTERM to the child's main process, up to `grace` seconds for it to stop, then
    SIGKILL to its whole process group (its workers too, whatever is left). Returns
    whether it stopped in time."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=grace)
        in_time = True
    except subprocess.TimeoutExpired:
        in_time = False
    kill_group(child)
    return in_time


def kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()

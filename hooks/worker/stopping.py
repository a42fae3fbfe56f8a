"""A cluster's stop request, as its worker processes see it.

django-q2 tells only its main process about SIGTERM; its workers finish whatever task
they hold, and the tasks queued behind it, before they see the stop. A pump would go
on claiming for its whole budget. `install()` (called by `manage.py qcluster` before
the cluster forks) creates one flag in shared memory that every process of the cluster
sees; the main process raises it from its signal handler, and the pump and the ticker
look at it. Outside a cluster (tests, `send_now`) no flag exists and nothing is ever
stopping.

The flag is a lock-free shared byte: a signal handler must not take a lock the
interrupted code might be holding.
"""

from __future__ import annotations

import ctypes
import time
from multiprocessing.sharedctypes import RawValue
from typing import Any

SLICE = 0.05  # seconds: how soon a sleeping `wait` notices a stop

_flag: Any = None


def install() -> None:
    """Create the cluster's shared flag; must run before the cluster's processes fork."""
    global _flag
    _flag = RawValue(ctypes.c_bool, False)


def request() -> None:
    """Raise the flag (safe in a signal handler)."""
    if _flag is not None:
        _flag.value = True


def cluster_stopping() -> bool:
    return _flag is not None and bool(_flag.value)


def wait(timeout: float) -> bool:
    """Sleep up to `timeout` seconds, waking within SLICE of a stop request; returns
    whether one was made."""
    deadline = time.monotonic() + timeout
    while not cluster_stopping():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(SLICE, left))
    return True


def uninstall() -> None:
    """Forget the flag (tests)."""
    global _flag
    _flag = None

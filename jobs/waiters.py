"""Bounds on `runsync` long polls, so they cannot hold every thread of a web process:
at most RUNSYNC_WAITERS calls wait at once in one process, and at most
RUNSYNC_WAITERS_PER_USER of them for one user. The threads are the process's, so the
bounds are too (each gunicorn worker keeps its own)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings


class Busy(Exception):
    """No room for another waiter; the message says whose limit was reached."""


_lock = threading.Lock()
_waiting: Counter = Counter()  # user id -> calls waiting in this process


@contextmanager
def slot(user_id: int) -> Iterator[None]:
    with _lock:
        if sum(_waiting.values()) >= settings.RUNSYNC_WAITERS:
            raise Busy("Too many runsync calls are waiting on this server")
        if _waiting[user_id] >= settings.RUNSYNC_WAITERS_PER_USER:
            raise Busy("You already have the most runsync calls waiting that one user may")
        _waiting[user_id] += 1
    try:
        yield
    finally:
        with _lock:
            _waiting[user_id] -= 1
            if not _waiting[user_id]:
                del _waiting[user_id]

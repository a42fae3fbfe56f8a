"""One writer at a time on SQLite, woken as soon as the previous one is done.

SQLite lets one connection write at a time. A connection that finds the database
locked sleeps in its busy handler (1, 2, 5, 10 … up to 100 ms steps) instead of being
woken when the lock is released, so worker processes that write in turns lose time
sleeping. Taking an OS file lock first makes them queue in the kernel and go at once.
PostgreSQL needs nothing of the kind: `serialized()` does nothing there.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

_files: dict[tuple[int, str], int] = {}
_held = threading.local()  # lock path -> depth, for this thread


def database_lock_path() -> str | None:
    """The lock file beside the SQLite database file (none for other databases, or an
    in-memory one)."""
    if connection.vendor != "sqlite":
        return None
    name = str(connection.settings_dict["NAME"])
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return f"{name}.writers"


def _descriptor(path: str) -> int:
    key = (os.getpid(), path)  # a forked worker opens its own: flock is per open file
    if key not in _files:
        _files[key] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return _files[key]


@contextmanager
def serialized(path: str | None = None) -> Iterator[None]:
    """Hold the writers' lock (re-entrant within a thread) for the block."""
    path = path or database_lock_path()
    depths = _held.__dict__.setdefault("depths", {})
    if path is None or depths.get(path):
        depths[path] = depths.get(path, 0) + 1
        try:
            yield
        finally:
            depths[path] -= 1
        return
    fd = _descriptor(path)
    fcntl.flock(fd, fcntl.LOCK_EX)
    depths[path] = 1
    try:
        yield
    finally:
        depths[path] = 0
        fcntl.flock(fd, fcntl.LOCK_UN)

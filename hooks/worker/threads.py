"""The process's sender threads: `WEBHOOK_SEND_THREADS` for endpoints that answer, and a
reserve for endpoints that stall (no answer), so they do not take threads from the
healthy ones. Created on first use, after django-q2 has forked its workers.

A call handed to them is a `Job` that lands, done, on the queue its caller waits on.
`concurrent.futures` did the same with a Future per call (a Condition, a lock, waiters)
and a semaphore per submit: ~18 µs of CPU a call against ~1 µs here, at every attempt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

from hooks import process


def stall_reserve(threads: int) -> int:
    return max(1, threads // 4)


class Job:
    """One call for a sender thread; when done it is put on `landed`."""

    __slots__ = ("fn", "args", "landed", "value", "error")

    def __init__(self, fn: Callable, args: tuple, landed: SimpleQueue) -> None:
        self.fn, self.args, self.landed = fn, args, landed
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except BaseException as exc:  # handed to whoever takes the result, as a Future would
            self.error = exc
        self.landed.put(self)

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class Senders:
    """A fixed set of threads taking jobs from one queue."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.jobs: SimpleQueue[Job] = SimpleQueue()
        for n in range(count):
            # Daemons: a pump lets its jobs land before it returns, so none is cut short
            # at exit; a stuck receiver cannot hold the process up as it ends.
            threading.Thread(target=self._serve, name=f"hooks-send-{n}", daemon=True).start()

    def submit(self, fn: Callable, *args: Any, landed: SimpleQueue) -> Job:
        job = Job(fn, args, landed)
        self.jobs.put(job)
        return job

    def _serve(self) -> None:
        while True:
            self.jobs.get().run()


def senders(threads: int) -> Senders:
    """This process's sender threads: `threads` plus the stall reserve."""
    state = process.current()
    with state.lock:
        if state.senders is None:
            state.senders = Senders(threads + stall_reserve(threads))
        return state.senders

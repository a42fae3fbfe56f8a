"""SwarmUI's queue hooks: Queue Start when the hub goes from idle to having work, Queue
End when nothing has been queued or running for the Queue End Delay. Both block: no
job starts anywhere while either is being sent. Each transition happens once, under a
row lock on the one QueueState row, whatever the number of workers and machines.

The delay is measured by a ticker (`tick`, run by `runjobs` beside its job workers, as
SwarmUI's tick loop), never slept inside a job worker: a job arriving during the delay
finds the queue still busy and starts at once, and that transition sends no Queue End."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

import hooks
from jobs.models import Job, QueueState

log = logging.getLogger("jobs.queue")
State = QueueState.State
POLL = 0.05  # seconds between looks at the state while another worker sends a hook
TICK = 0.25  # seconds between the ticker's looks at a busy queue (SwarmUI's: 1 s)
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def _lease() -> timedelta:
    return timedelta(seconds=hooks.settings().max_timeout + 30)


def _take(state: QueueState, to: str, now) -> None:
    state.state, state.owner, state.lease_until, state.changed_at = to, WORKER, now + _lease(), now
    state.save()


def enter() -> None:
    """Return once the hub is busy; the worker that finds it idle sends Queue Start first.
    A busy queue (its delay running or not) is entered at once."""
    QueueState.load()
    while True:
        with transaction.atomic():
            state = QueueState.objects.select_for_update().get(pk=1)
            now = timezone.now()
            if state.state == State.BUSY:
                return
            stale = state.lease_until is not None and state.lease_until < now
            starting = state.state == State.IDLE or stale
            if starting:
                _take(state, State.STARTING, now)
        if starting:
            log.info("Queue start (worker %s)", WORKER)
            hooks.send_to_slot("queue_start")
            QueueState.objects.filter(pk=1, owner=WORKER, state=State.STARTING).update(
                state=State.BUSY, lease_until=None, changed_at=timezone.now()
            )
            return
        time.sleep(POLL)


def work_left() -> bool:
    return Job.objects.filter(status__in=[Job.Status.IN_QUEUE, Job.Status.IN_PROGRESS]).exists()


def leave() -> None:
    """After a job: the queue's quiet time (the Queue End Delay) counts from now. The
    worker is free at once; the ticker ends the queue when the delay has passed."""
    QueueState.objects.filter(pk=1).update(last_job_activity=timezone.now())


def quiet_since(state: QueueState) -> datetime:
    """Since when a busy queue has had nothing finish: its last job's end, or when it
    went busy."""
    moments = [m for m in (state.changed_at, state.last_job_activity) if m is not None]
    return max(moments)


def due(state: QueueState, now: datetime) -> bool:
    """A busy queue whose quiet time has reached the Queue End Delay."""
    waited = now - quiet_since(state)
    return state.state == State.BUSY and waited >= timedelta(seconds=state.queue_end_delay)


def tick(now: datetime | None = None) -> bool:
    """One look of the ticker: when the queue is busy, nothing is queued or running and
    the delay has passed (as of `now`), take the state and send Queue End (once, under
    the row lock). Returns whether it was sent."""
    now = now or timezone.now()
    state = QueueState.objects.filter(pk=1).first()
    if state is None or not due(state, now) or work_left():
        return False  # the usual answer, without taking the write lock
    with transaction.atomic():
        state = QueueState.objects.select_for_update().get(pk=1)
        if not due(state, now) or work_left():
            return False  # another ticker's turn, or work came back
        _take(state, State.ENDING, timezone.now())  # idle for new work once the hook returns
    _end("")
    return True


def run_ticker(stop: threading.Event) -> None:
    """The ticker's thread (in `runjobs`), until `stop` is set: `tick` every TICK s."""
    try:
        while not stop.wait(TICK):
            try:
                tick()
            except DatabaseError as exc:  # the database is away: the next tick looks again
                log.warning("The queue's ticker could not look at the queue: %s", exc)
    finally:
        connection.close()


def _end(why: str) -> None:
    """Send Queue End, then let new work in (the state was taken as ENDING)."""
    log.info("Queue end%s (worker %s)", why, WORKER)
    hooks.send_to_slot("queue_end")
    QueueState.objects.filter(pk=1, owner=WORKER, state=State.ENDING).update(
        state=State.IDLE, owner="", lease_until=None, changed_at=timezone.now()
    )


def shut_down() -> bool:
    """The job workers have stopped: a busy queue ends, as SwarmUI sends Queue End when
    its backends shut down (after Server Shutdown). Not while a job still runs
    elsewhere: another machine's workers keep the queue busy. Returns whether Queue End
    was sent."""
    QueueState.load()
    with transaction.atomic():
        state = QueueState.objects.select_for_update().get(pk=1)
        running = Job.objects.filter(status=Job.Status.IN_PROGRESS).exists()
        if state.state != State.BUSY or running:
            return False
        _take(state, State.ENDING, timezone.now())
    _end(" at shutdown")
    return True

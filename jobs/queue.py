"""SwarmUI's queue hooks: Queue Start when the hub goes from idle to having work, Queue
End when nothing has been queued or running for the Queue End Delay. Both block: no
job starts anywhere while either is being sent. Each transition happens once, under a
row lock on the one QueueState row, whatever the number of workers and machines."""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

import hooks
from jobs.models import Job, QueueState

log = logging.getLogger("jobs.queue")
State = QueueState.State
POLL = 0.05  # seconds between looks at the state while another worker sends a hook
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def _lease() -> timedelta:
    return timedelta(seconds=hooks.settings().max_timeout + 30)


def _take(state: QueueState, to: str, now) -> None:
    state.state, state.owner, state.lease_until, state.changed_at = to, WORKER, now + _lease(), now
    state.save()


def enter() -> None:
    """Return once the hub is busy; the worker that finds it idle sends Queue Start first."""
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
    """After a job: when nothing is left, wait the delay and end the queue (once)."""
    QueueState.objects.filter(pk=1).update(last_job_activity=timezone.now())
    if work_left():
        return
    delay = QueueState.load().queue_end_delay
    time.sleep(delay)
    with transaction.atomic():
        state = QueueState.objects.select_for_update().get(pk=1)
        now = timezone.now()
        recent = state.last_job_activity and state.last_job_activity > now - timedelta(
            seconds=delay
        )
        if state.state != State.BUSY or recent or work_left():
            return  # someone else's turn, or work came back
        _take(state, State.ENDING, now)  # idle for new work only once the hook returns
    _end("")


def _end(why: str) -> None:
    """Send Queue End, then let new work in (the state was taken as ENDING)."""
    log.info("Queue end%s (worker %s)", why, WORKER)
    hooks.send_to_slot("queue_end")
    QueueState.objects.filter(pk=1, owner=WORKER, state=State.ENDING).update(
        state=State.IDLE, owner="", lease_until=None, changed_at=timezone.now()
    )


def shut_down() -> bool:
    """The job workers stop: a busy queue ends, as SwarmUI sends Queue End when its
    backends shut down (before Server Shutdown). Not while a job still runs elsewhere:
    another machine's workers keep the queue busy. Returns whether Queue End was sent."""
    QueueState.load()
    with transaction.atomic():
        state = QueueState.objects.select_for_update().get(pk=1)
        running = Job.objects.filter(status=Job.Status.IN_PROGRESS).exists()
        if state.state != State.BUSY or running:
            return False
        _take(state, State.ENDING, timezone.now())
    _end(" at shutdown")
    return True

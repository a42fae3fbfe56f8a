"""Handing deliveries to the broker: one pump task per batch of ids, sent once the
transaction that wrote them commits. The Delivery table stays the source of truth; a
task the broker loses is made good by the sweeper after ENQUEUE_GRACE.

When the broker is the database (django-q2's ORM broker on the same connection), the
first task is written in the transaction itself rather than after it: it becomes
visible to the workers with the deliveries, at the same commit, and vanishes with them
on a rollback, and emit() is spared a second commit of its own."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.db import DatabaseError, transaction
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.tasks import async_task

from hooks import conf, process
from hooks.models import Delivery

log = logging.getLogger("hooks.handover")

# The broker has this long to start a delivery before the sweeper enqueues it again.
ENQUEUE_GRACE = timedelta(seconds=60)
TASK = "hooks.worker.tasks.pump"
MAX_TASKS_PER_ENQUEUE = 4


def enqueue(ids: list, tasks: int = MAX_TASKS_PER_ENQUEUE) -> None:
    """Hand deliveries to the broker: a pump task per batch, at most `tasks` of them.

    Pumps keep claiming whatever is due, so the ids beyond the first batches need no
    task of their own; a lost task is made good by the sweeper.
    """
    size = conf.settings().batch_size
    for start in range(0, min(len(ids), size * tasks), size):
        _async([str(i) for i in ids[start : start + size]])


def hand_over(ids: list, tasks: int = MAX_TASKS_PER_ENQUEUE) -> None:
    """`enqueue`; if the broker refuses, the deliveries are marked unqueued (for the
    ticker's next look) and the broker's error is raised."""
    try:
        enqueue(ids, tasks)
    except Exception:
        try:
            unmark(ids)
        except DatabaseError:  # the database too: the sweeper finds them after ENQUEUE_GRACE
            log.warning("Could not mark %d deliveries unqueued either.", len(ids))
        raise


def unmark(ids: list) -> None:
    """The broker did not take these: mark them unqueued, so the next look at the table
    (the ticker's, every second) hands them over, not only after ENQUEUE_GRACE."""
    Delivery.objects.filter(pk__in=ids, claim_token__isnull=True).update(enqueued_until=None)


def enqueue_pump() -> None:
    """One more pump with no ids of its own: it claims whatever is due."""
    _async([])


def _broker():
    """One broker client per process (and per fork): django-q2 otherwise builds a new
    one, with a new Redis connection, for every task it enqueues. It is the delivery
    cluster's queue (Q_CLUSTER's name) wherever the event is emitted: django-q2's
    default is the queue of the process's own cluster, so events emitted by a job
    would otherwise be pumped by the job workers."""
    state = process.current()
    if state.broker is None:
        state.broker = get_broker(Conf.PREFIX)
    return state.broker


def _async(ids: list) -> None:
    async_task(TASK, ids, task_name="hooks.pump", broker=_broker())


class _Pending:
    """Delivery ids written in one transaction, enqueued together when it commits.

    The rows are committed by then, so a broker that is down must not turn the caller's
    success into an error (nor stop the transaction's other on-commit hooks): the
    failure is logged, the deliveries are marked unqueued, and the ticker hands them
    over within a second of the broker's return."""

    __qualname__ = "hooks.outbox.handover.hand_over"  # how Django names a failed hook

    def __init__(self, tasks: int = MAX_TASKS_PER_ENQUEUE) -> None:
        self.ids: list = []
        self.tasks = tasks  # how many tasks the commit may still enqueue

    def __call__(self) -> None:
        ids, self.ids = self.ids, []
        if not ids or not self.tasks:
            return
        try:
            hand_over(ids, self.tasks)
        except Exception as exc:
            log.warning(
                "Could not hand %d deliveries to the broker (%s: %s); the ticker will.",
                len(ids), type(exc).__name__, exc,
            )  # fmt: skip


_local = threading.local()  # this thread's _Pending, while its transaction is open


def enqueue_on_commit(ids: list) -> None:
    """Enqueue once the current transaction commits, one hand-over per transaction
    however many events it emits (a rolled-back one enqueues nothing): the first task in
    the transaction when the broker writes to it (see the module's docstring), the
    others after it."""
    connection = transaction.get_connection()
    pending = getattr(_local, "pending", None)
    registered = pending is not None and any(
        entry[1] is pending for entry in connection.run_on_commit
    )
    if not registered:
        pending = _local.pending = _Pending()
        transaction.on_commit(pending, robust=True)
        if _writes_in(connection):
            ids = _enqueue_first(ids, pending)
    pending.ids.extend(ids)


def _enqueue_first(ids: list, pending: _Pending) -> list:
    """The first batch's task, written in the transaction; returns the ids left for the
    commit. A database error is the transaction's own and is raised; any other failure
    leaves every id to the commit's hand-over, which logs it if it fails again."""
    size = conf.settings().batch_size
    try:
        enqueue(ids[:size], tasks=1)
    except DatabaseError:
        raise
    except Exception:
        return ids
    pending.tasks = MAX_TASKS_PER_ENQUEUE - 1
    return ids[size:]


def _writes_in(connection) -> bool:
    """Whether a task enqueued now is a row written in `connection`'s transaction."""
    return (
        connection.in_atomic_block
        and isinstance(_broker(), ORM)
        and (Conf.ORM or "default") == connection.alias
    )

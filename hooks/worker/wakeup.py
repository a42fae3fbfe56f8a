"""Waking the embedded broker's workers when a task is enqueued, instead of waiting out
their poll (the ORM broker looks for tasks every Q_POLL seconds: 100 ms on average
between a commit and its delivery starting).

Every process that takes tasks from the database broker (a cluster's pusher) listens
on a Unix datagram socket of its own in a folder shared by everyone using the same
database; enqueueing a task sends one byte to each socket of that queue once the
task's row is committed. A lost or refused poke only delays: the listener still looks
every Q_POLL seconds, and the ticker and the sweeper stay behind it. Redis needs none
of this: its workers block on the list and wake at once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import select
import socket
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django_q.brokers import orm
from django_q.conf import Conf
from django_q.models import OrmQ

from hooks.worker import writelock


def folder() -> Path:
    """One folder per database (its name): the web process, the workers and the commands
    of one hub find each other there; a test database gets its own."""
    database = settings.DATABASES[Conf.ORM or "default"]
    return _folder(f"{database['ENGINE']}:{database['NAME']}")


@functools.cache
def _folder(database: str) -> Path:  # once per process and database: emit() pays for it
    key = hashlib.sha256(database.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"webhookhub-wake-{os.getuid()}-{key}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


class Listener:
    """This process's socket for one queue; `wait` returns early when poked."""

    def __init__(self, queue: str) -> None:
        self.path = folder() / f"{queue}.{os.getpid()}.sock"
        self.path.parent.mkdir(mode=0o700, exist_ok=True)  # a tidy-up of /tmp may remove it
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)

    def wait(self, timeout: float) -> bool:
        """Up to `timeout` seconds; True when poked (every poke so far is consumed)."""
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return False
        with contextlib.suppress(BlockingIOError):
            while self.sock.recv(64):
                pass
        return True

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


_sender: socket.socket | None = None


def poke(queue: str) -> int:
    """Wake every listener of `queue`; sockets of processes that are gone are removed.
    Returns how many were told."""
    global _sender
    if _sender is None:
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender.setblocking(False)
    told = 0
    for path in folder().glob(f"{queue}.*.sock"):
        try:
            _sender.sendto(b"!", str(path))
            told += 1
        except BlockingIOError:
            told += 1  # its buffer is full of pokes: it is awake already
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        except OSError:
            pass  # a poke is only a hint
    return told


class WakeableORM(orm.ORM):
    """django-q2's database broker, woken by `poke` rather than only by its poll.

    Its writes (a task in, taken, done) queue for SQLite's writers' lock like the
    pumps' (hooks.worker.writelock): in SQLite's busy handler instead, a pump asking for
    a helper slept for up to seconds while the other pumps took turns writing. Not
    inside a transaction, though: that holds SQLite's lock already (IMMEDIATE), and
    waiting for the writers' lock then would deadlock with a pump that holds it and
    waits for SQLite's (django-q2's scheduler enqueues in its transaction)."""

    listener: Listener | None = None

    @staticmethod
    def _queued():
        if transaction.get_connection(Conf.ORM or "default").in_atomic_block:
            return contextlib.nullcontext()
        return writelock.serialized()

    def enqueue(self, task):
        with self._queued():
            pk = super().enqueue(task)
        queue = self.list_key or Conf.CLUSTER_NAME
        # Only a committed row can be taken; outside a transaction this runs at once.
        transaction.on_commit(lambda: poke(queue), using=Conf.ORM, robust=True)
        return pk

    def dequeue(self):
        tasks = self._take()
        if tasks:
            return tasks
        if self.listener is None:
            self.listener = Listener(self.list_key)
        if self.listener.wait(Conf.POLL):
            return self._take()
        return None

    def _take(self) -> list[tuple[int, str]]:
        """Lock up to BULK due tasks for this cluster, each only if no other took it."""
        now = self.timeout(None)
        taken = []
        for task in self.get_connection().filter(key=self.list_key, lock__lt=orm.timezone.now())[
            : Conf.BULK
        ]:
            with writelock.serialized():
                took = (
                    OrmQ.objects.using(Conf.ORM).filter(id=task.id, lock=task.lock).update(lock=now)
                )
            if took:
                taken.append((task.pk, task.payload))
        return taken

    def delete(self, task_id):
        with self._queued():
            super().delete(task_id)

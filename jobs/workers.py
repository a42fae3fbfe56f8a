"""Which job workers are up: each `runjobs` heartbeats a row; `/health` counts them."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from jobs import remote
from jobs.models import Job, WorkerCluster

BEAT = 5.0  # seconds between heartbeats
LOST_AFTER = timedelta(seconds=3 * BEAT)  # a cluster not seen for this long is gone


def this_cluster() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(name: str) -> bool:
    """Say this cluster is up; a database outage only makes it look gone for a while."""
    try:
        WorkerCluster.objects.update_or_create(
            name=name, defaults={"workers": settings.JOB_WORKERS, "seen_at": timezone.now()}
        )
    except DatabaseError:
        return False
    return True


def gone(name: str) -> None:
    try:
        WorkerCluster.objects.filter(name=name).delete()
    except DatabaseError:
        pass  # it ages out


def counts() -> dict[str, int]:
    """RunPod's `workers`: running = jobs being run now, idle = the other live workers
    (the hub's own job workers, and each remote worker seen within its lost time)."""
    now = timezone.now()
    recent = WorkerCluster.objects.filter(seen_at__gte=now - LOST_AFTER)
    total = sum(recent.values_list("workers", flat=True))
    total += remote.live_workers().count()
    running = Job.objects.filter(status=Job.Status.IN_PROGRESS).count()
    return {"idle": max(total - running, 0), "running": running}

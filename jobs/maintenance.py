"""The jobs cluster's own sweeper: lost enqueues, expired ttls, vanished workers."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from jobs import lifecycle
from jobs.models import Endpoint, Job

Status = Job.Status
LOST_AFTER = timedelta(seconds=60)
SCHEDULE = "webhookhub: sweep jobs"


def sweep() -> dict:
    now = timezone.now()
    expired = 0
    for job in Job.objects.select_related("endpoint", "user").filter(status=Status.IN_QUEUE):
        if now > job.created_at + timedelta(milliseconds=job.ttl_ms):
            expired += lifecycle.finish(
                job, Status.TIMED_OUT, error="The job's ttl expired before it started."
            )
        elif job.created_at < now - LOST_AFTER:
            lifecycle.enqueue(job.id)  # harmless if its task is still on its way
    vanished = 0
    running = Job.objects.select_related("endpoint", "user").filter(status=Status.IN_PROGRESS)
    for job in running:
        if job.heartbeat_at and job.heartbeat_at < now - LOST_AFTER:
            vanished += lifecycle.finish(
                job, Status.FAILED, error="The worker running this job stopped."
            )
        elif job.started_at + timedelta(milliseconds=job.execution_timeout_ms) + LOST_AFTER < now:
            vanished += lifecycle.finish(job, Status.TIMED_OUT, error="Execution timeout exceeded.")
    return {"expired": expired, "vanished": vanished}


def ensure_schedule(**kwargs) -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE,
        defaults={"func": "jobs.maintenance.sweep", "schedule_type": Schedule.MINUTES, "minutes": 1,
                  "repeats": -1, "cluster": lifecycle.CLUSTER},
    )  # fmt: skip


BUILTIN_ENDPOINTS = [
    ("echo", "jobs.handlers.echo", "Returns its input."),
    ("sleep", "jobs.handlers.sleep", "Sleeps input.seconds, then returns them."),
]


def ensure_endpoints(**kwargs) -> None:
    """A fresh install (and every migrate) has the built-in endpoints."""
    for name, handler, description in BUILTIN_ENDPOINTS:
        Endpoint.objects.get_or_create(
            name=name, defaults={"handler": handler, "description": description}
        )

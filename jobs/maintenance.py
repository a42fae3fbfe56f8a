"""The jobs cluster's own sweeper: lost enqueues, expired ttls, vanished workers."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs import lifecycle, remote
from jobs.models import Endpoint, Job

log = logging.getLogger("jobs.maintenance")
Status = Job.Status
LOST_AFTER = timedelta(seconds=60)
PRUNE_BATCH = 1000
SCHEDULE = "webhookhub: sweep jobs"


def sweep() -> dict:
    """Each job on its own: one that cannot be handled is logged and the others go on."""
    now = timezone.now()
    expired = vanished = 0
    remote.reclaim()  # jobs of remote workers that stopped pinging: queued again
    for job in Job.objects.select_related("endpoint", "user").filter(status=Status.IN_QUEUE):
        expired += _isolated(_queued, job, now)
    running = Job.objects.select_related("endpoint", "user").filter(status=Status.IN_PROGRESS)
    for job in running:
        vanished += _isolated(_running, job, now)
    pruned = prune_results(now)
    return {
        "expired": expired,
        "vanished": vanished,
        "pruned": pruned,
        "forgotten": remote.forget(),
    }


def prune_results(now) -> int:
    """Delete finished jobs whose results are past their retention (JOB_RESULT_TTL,
    JOB_RESULT_TTL_SYNC for /runsync jobs), in batches so no transaction grows large."""
    sync = Q(id__startswith="sync-")
    pruned = 0
    for kind, ttl in ((~sync, settings.JOB_RESULT_TTL), (sync, settings.JOB_RESULT_TTL_SYNC)):
        cutoff = now - timedelta(seconds=ttl)
        old = Job.objects.filter(kind, status__in=Job.FINAL, completed_at__lt=cutoff)
        while batch := list(old.values_list("pk", flat=True)[:PRUNE_BATCH]):
            pruned += Job.objects.filter(pk__in=batch).delete()[1].get("jobs.Job", 0)
    return pruned


def _isolated(step, job: Job, now) -> int:
    try:
        return int(step(job, now))
    except Exception:
        log.exception(
            "The jobs sweeper could not handle job %s; it goes on with the others.", job.pk
        )
        return 0


def _queued(job: Job, now) -> bool:
    if now > job.created_at + timedelta(milliseconds=job.ttl_ms):
        return lifecycle.finish(
            job, Status.TIMED_OUT, error="The job's ttl expired before it started."
        )
    if job.created_at < now - LOST_AFTER:
        lifecycle.enqueue(job.id)  # harmless if its task is still on its way
    return False


def _running(job: Job, now) -> bool:
    if job.heartbeat_at and job.heartbeat_at < now - LOST_AFTER:
        return lifecycle.finish(job, Status.FAILED, error="The worker running this job stopped.")
    if job.started_at + timedelta(milliseconds=job.execution_timeout_ms) + LOST_AFTER < now:
        return lifecycle.finish(job, Status.TIMED_OUT, error="Execution timeout exceeded.")
    return False


def ensure_schedule(**kwargs) -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE,
        defaults={"func": "jobs.maintenance.sweep", "schedule_type": Schedule.MINUTES, "minutes": 1,
                  "repeats": -1, "cluster": lifecycle.CLUSTER},
    )  # fmt: skip


BUILTIN_ENDPOINTS = [  # (name, handler, description, aggregate the stream)
    ("echo", "jobs.handlers.echo", "Returns its input.", False),
    ("sleep", "jobs.handlers.sleep", "Sleeps input.seconds, then returns them.", False),
    ("words", "jobs.handlers.words",
     "Streams the words of input.text (a generator handler; its output lists them).", True),
]  # fmt: skip


def ensure_endpoints(**kwargs) -> None:
    """A fresh install (and every migrate) has the built-in endpoints."""
    for name, handler, description, aggregate in BUILTIN_ENDPOINTS:
        Endpoint.objects.get_or_create(
            name=name,
            defaults={
                "handler": handler,
                "description": description,
                "aggregate_stream": aggregate,
            },
        )

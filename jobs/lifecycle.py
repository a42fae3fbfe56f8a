"""Job state changes: each moves the job, then tells of it once through jobs.events, which
decides who is told and with what."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from jobs import events
from jobs.models import Job

Status = Job.Status
REREAD = [
    f.attname for f in Job._meta.concrete_fields if f.name not in ("input", "output", "progress")
]
TASK = "jobs.runner.run"
CLUSTER = "jobs"


def enqueue(job_id: str) -> None:
    async_task(TASK, job_id, cluster=CLUSTER, task_name="jobs.run")


@transaction.atomic
def submit(job: Job) -> Job:
    if job.namespace_id:
        job.number = job.namespace.next_build_number()
    job.save()
    events.submitted(job)
    transaction.on_commit(lambda: enqueue(job.id), robust=True)
    return job


def start(job: Job, worker=None) -> bool:
    """Claim a queued job for one runner, the hub's own or a remote worker (`worker`): one
    conditional UPDATE, so a job is never run by two. Its old chunks go (a retried job
    streams anew) and job.started is told. False when it was not queued any more."""
    with transaction.atomic():
        now = timezone.now()
        claimed = Job.objects.filter(pk=job.pk, status=Status.IN_QUEUE).update(
            status=Status.IN_PROGRESS, started_at=now, heartbeat_at=now, progress=None,
            worker=worker,
        )  # fmt: skip
        if claimed:
            job.refresh_from_db()
            job.chunks.all().delete()
            events.started(job)
    return bool(claimed)


def tag(job: Job, tags: list[str], user) -> list[str]:
    """Add tags after submission: a `job.tagged` event for each new one, and for a
    namespace's job one `build.tagged` with them all, by `user`."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        added = [t for t in dict.fromkeys(tags) if t not in job.tags]
        if added:
            job.tags = [*job.tags, *added]
            job.save(update_fields=["tags"])
            events.tagged(job, added, user)
    return added


def pin(job: Job, pinned: bool) -> bool:
    """Pin or unpin a job; when that changed it, a namespace's job tells build.pinned or
    build.unpinned. False when it already was."""
    with transaction.atomic():
        changed = Job.objects.filter(pk=job.pk).exclude(pinned=pinned).update(pinned=pinned)
        if changed:
            job.refresh_from_db(fields=REREAD)
            events.pin_changed(job)
    job.pinned = pinned
    return bool(changed)


def finish(job: Job, status: str, *, output=None, error: str = "") -> bool:
    """Move a queued or running job to a final state, once, and tell of it."""
    with transaction.atomic():
        moved = Job.objects.filter(
            pk=job.pk, status__in=[Status.IN_QUEUE, Status.IN_PROGRESS]
        ).update(  # its final output replaces any progress it reported
            status=status, output=output, progress=None, error=error, completed_at=timezone.now()
        )
        if not moved:
            return False
        # Its state as the UPDATE left it; the input and output are not read back (each
        # may be 20 MB): the input has not changed, the output is the one just written
        # and the progress is gone.
        job.refresh_from_db(fields=REREAD)
        job.output, job.progress = output, None
        events.finished(job)
    return True


def requeue(job: Job) -> bool:
    """A running job that a stopping worker gives back: queued again with the same id
    (its ttl still counts from submission), for the next worker to run from the start."""
    return _queue_again(
        job, [Status.IN_PROGRESS], started_at=None, heartbeat_at=None, progress=None, worker=None
    )


def cancel(job: Job) -> bool:
    return finish(job, Status.CANCELLED)


def retry(job: Job) -> bool:
    """FAILED or TIMED_OUT jobs only: back in the queue, same id."""
    return _queue_again(
        job, [Status.FAILED, Status.TIMED_OUT], output=None, error="", started_at=None,
        completed_at=None, heartbeat_at=None, created_at=timezone.now(), retries=job.retries + 1,
    )  # fmt: skip


def _queue_again(job: Job, statuses: list[str], **fields) -> bool:
    """Move the job from one of `statuses` back to IN_QUEUE (with `fields`) and enqueue
    it once that commits."""
    with transaction.atomic():
        moved = Job.objects.filter(pk=job.pk, status__in=statuses).update(
            status=Status.IN_QUEUE, **fields
        )
        if moved:
            transaction.on_commit(lambda: enqueue(job.id), robust=True)
    return bool(moved)

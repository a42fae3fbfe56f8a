"""Job state changes: each moves the job, then tells of it once through jobs.events, which
decides who is told and with what."""

from __future__ import annotations

from django.conf import settings
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


def finish(job: Job, status: str, *, output=None, error: str = "", **more) -> bool:
    """Move a queued or running job to a final state, once, and tell of it (`more`: other
    fields to write with it, like its history)."""
    with transaction.atomic():
        moved = Job.objects.filter(
            pk=job.pk, status__in=[Status.IN_QUEUE, Status.IN_PROGRESS]
        ).update(  # its final output replaces any progress it reported
            status=status, output=output, progress=None, error=error, completed_at=timezone.now(),
            **more,
        )  # fmt: skip
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


def worker_lost(job: Job, why: str) -> str | None:
    """A remote worker lost the running job (`why`: how we know). It goes back to the
    queue to run again from the start, up to JOB_REMOTE_REQUEUES times; after that it
    fails, so a job that kills every worker that takes it does not loop. Either way its
    history says so. The new status, or None when that worker did not hold it any more."""
    history = list(job.history or [])
    lost = 1 + sum(entry.get("kind") == "lost" for entry in history)
    limit = settings.JOB_REMOTE_REQUEUES
    now = timezone.now()
    if lost <= limit:
        text = f"{why}; queued again to run from the start ({lost} of {limit})."
        entry = {"at": now.isoformat(), "kind": "lost", "text": text}
        moved = _queue_again(
            job, [Status.IN_PROGRESS], worker=None, started_at=None, heartbeat_at=None,
            progress=None, history=[*history, entry], held_by=job.worker_id,
        )  # fmt: skip
        return Status.IN_QUEUE if moved else None
    text = f"{why}; its workers were lost {lost} times, more than JOB_REMOTE_REQUEUES ({limit})."
    entry = {"at": now.isoformat(), "kind": "lost", "text": text + " Failed."}
    return (
        Status.FAILED if finish(job, Status.FAILED, error=text, history=[*history, entry]) else None
    )


def cancel(job: Job) -> bool:
    return finish(job, Status.CANCELLED)


def retry(job: Job) -> bool:
    """FAILED or TIMED_OUT jobs only: back in the queue, same id."""
    return _queue_again(
        job, [Status.FAILED, Status.TIMED_OUT], output=None, error="", started_at=None,
        completed_at=None, heartbeat_at=None, created_at=timezone.now(), retries=job.retries + 1,
    )  # fmt: skip


def _queue_again(job: Job, statuses: list[str], held_by: object = (), **fields) -> bool:
    """Move the job from one of `statuses` (and held by remote worker `held_by`, when
    given) back to IN_QUEUE (with `fields`) and enqueue it once that commits."""
    found = Job.objects.filter(pk=job.pk, status__in=statuses)
    if held_by != ():
        found = found.filter(worker=held_by)
    with transaction.atomic():
        moved = found.update(status=Status.IN_QUEUE, **fields)
        if moved:
            transaction.on_commit(lambda: enqueue(job.id), robust=True)
    return bool(moved)

"""Job state changes and the events each one emits (the job side of the hub)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

import hooks
from accounts.events import wants_notification
from accounts.notification import webhook_of
from jobs import events
from jobs.models import Job

Status = Job.Status
SERVER = (hooks.SERVER,)
TASK = "jobs.runner.run"
CLUSTER = "jobs"


def callback_schedule() -> tuple[float, ...]:
    """Seconds before each attempt of a job's callback (JOB_CALLBACK_SCHEDULE): RunPod
    retries twice, 10 s apart; by default the hub then goes on with its own schedule,
    and "0,10,10" is RunPod's exact policy (three attempts, then failed)."""
    return tuple(settings.JOB_CALLBACK_SCHEDULE)


def enqueue(job_id: str) -> None:
    async_task(TASK, job_id, cluster=CLUSTER, task_name="jobs.run")


def _event(job: Job, name: str, **extra) -> dict:
    return {"event": name, "job": events.job_summary(job), **extra}


def _build_event(job: Job, moment: str, **extra) -> None:
    """A namespace's job: the same moment as Djinn's build event, to its webhooks."""
    if job.namespace_id:
        payload = {**events.build_payload(job), **extra}
        hooks.emit(events.BUILD_EVENTS[moment], payload, namespace=job.namespace.key,
                   audience=(hooks.NAMESPACE,))  # fmt: skip


@transaction.atomic
def submit(job: Job) -> Job:
    if job.namespace_id:
        job.number = job.namespace.next_build_number()
    job.save()
    hooks.emit(events.SUBMITTED, _event(job, "job_submitted"), user=job.user, audience=SERVER)
    _build_event(job, events.SUBMITTED)
    transaction.on_commit(lambda: enqueue(job.id), robust=True)
    return job


def started(job: Job) -> None:
    hooks.emit(events.STARTED, _event(job, "job_started"), user=job.user, audience=SERVER)
    _build_event(job, events.STARTED)


def tag(job: Job, tags: list[str]) -> list[str]:
    """Add tags after submission; each new one is a `job.tagged` event."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        added = [t for t in dict.fromkeys(tags) if t not in job.tags]
        if added:
            job.tags = [*job.tags, *added]
            job.save(update_fields=["tags"])
        for new in added:
            hooks.emit(events.TAGGED, _event(job, "job_tagged", tag=new), user=job.user,
                       audience=SERVER)  # fmt: skip
            _build_event(job, events.TAGGED, tag=new)
    return added


def finish(job: Job, status: str, *, output=None, error: str = "") -> bool:
    """Move a queued or running job to a final state, once, and emit what follows."""
    with transaction.atomic():
        moved = Job.objects.filter(
            pk=job.pk, status__in=[Status.IN_QUEUE, Status.IN_PROGRESS]
        ).update(status=status, output=output, error=error, completed_at=timezone.now())
        if not moved:
            return False
        job.refresh_from_db()
        _final_events(job)
    return True


def _final_events(job: Job) -> None:
    path = f"/jobs/{job.id}/"  # the owner's page of it (the API's status needs a token)
    payload = events.finished_payload(job.id, job.endpoint.name, job.status, path)
    # One event: the server's subscribers, and the owner's notification webhook when
    # they are away; a namespace's job is a build.finished to the namespace's webhooks.
    audience = SERVER + ((hooks.USER,) if wants_notification(job.user) else ())
    hooks.emit(events.FINISHED, payload, user=job.user, audience=audience)
    _build_event(job, events.FINISHED)
    if job.webhook:
        hooks.emit(
            events.CALLBACK,
            job.status_json(with_input=True),
            target_url=job.webhook,
            target_signer=callback_signer(job.user),
            target_schedule=callback_schedule(),
            user=job.user,  # recorded, so the owner's Jobs page finds it; no user webhook gets it
            audience=(),
        )
    if job.status == Status.COMPLETED:
        _swarm_events(job)


def _swarm_events(job: Job) -> None:
    """SwarmUI's Every Gen (and Manual Gen, for `manual`) once per produced output: each
    chunk a generator handler yielded, or the one output; Manual At End once per job."""
    mode = job.webhooks_mode
    if mode == Job.Webhooks.NONE:
        return
    for number, output in enumerate(produced_outputs(job)):
        values = events.flat(job, output=output, number=number)
        hooks.emit(events.EVERY_JOB, values, audience=(hooks.SERVER,))
        if mode == Job.Webhooks.MANUAL:
            hooks.emit(events.MANUAL_JOB, values, audience=(hooks.SERVER,))
    if mode == Job.Webhooks.MANUAL_AT_END:
        hooks.emit(events.MANUAL_JOB, events.flat(job), audience=(hooks.SERVER,))


def produced_outputs(job: Job) -> list:
    chunks = list(job.chunks.values_list("output", flat=True))
    return chunks or [job.output]


def callback_signer(user):
    """Whose secret signs a job's callback: its owner's notification webhook when it
    signs, or nobody (unsigned, as RunPod sends it). The hub reads the secret at each
    attempt; it is never copied into the delivery.

    By design: RunPod signs nothing, and a job's callback URL is given per request,
    with no place for a secret. A user who turned on signing for their notification
    webhook already verifies that secret, so their callbacks become verifiable with
    it too; someone who did not gets RunPod's unsigned callback."""
    notification = webhook_of(user)
    return notification if notification and notification.secret else None


def requeue(job: Job) -> bool:
    """A running job that a stopping worker gives back: queued again with the same id
    (its ttl still counts from submission), for the next worker to run from the start."""
    return _queue_again(job, [Status.IN_PROGRESS], started_at=None, heartbeat_at=None)


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

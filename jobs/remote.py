"""Remote RunPod workers (runpod-python's own loop on other machines): what their
take, result, stream and ping do to the hub's jobs. A take claims queued jobs with the
same conditional UPDATE as the hub's own job workers (lifecycle.start); a result ends
the job through lifecycle.finish, as an in-process job ends."""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from jobs import lifecycle, queue
from jobs.models import Chunk, Endpoint, Job, RemoteWorker, WorkerKey

Status = Job.Status
CANDIDATES = 4  # queued jobs looked at per job asked for (others may claim some first)
TAKE_RACE = timedelta(seconds=2)  # a job this young is not reclaimed from its worker
FORGOTTEN_AFTER = timedelta(days=1)  # an unseen worker's row is deleted after this


def lost_after() -> timedelta:
    """A remote worker not seen (take or ping) for this long is gone, and the jobs it
    held go back to the queue: JOB_REMOTE_WORKER_LOST seconds (default 30, three of
    runpod-python's 10 s pings)."""
    return timedelta(seconds=settings.JOB_REMOTE_WORKER_LOST)


def seen(key: WorkerKey, pod_id: str) -> RemoteWorker:
    worker, _ = RemoteWorker.objects.update_or_create(
        key=key, pod_id=pod_id[:200], defaults={"seen_at": timezone.now()}
    )
    return worker


def live_workers():
    return RemoteWorker.objects.filter(seen_at__gte=timezone.now() - lost_after())


def reclaim(endpoint: Endpoint | None = None) -> int:
    """Jobs held by workers that stopped pinging: back to the queue, to run again from
    the start (their ttl and execution timeout still rule, as for any queued job), or
    failed once their workers were lost too often (lifecycle.worker_lost)."""
    lost = Job.objects.filter(
        status=Status.IN_PROGRESS, worker__isnull=False,
        worker__seen_at__lt=timezone.now() - lost_after(),
    ).select_related("worker__key")  # fmt: skip
    if endpoint is not None:
        lost = lost.filter(endpoint=endpoint)
    moved = 0
    for job in lost.defer("input", "output"):
        seen_at = job.worker.seen_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        why = f"Remote worker {_named(job.worker)} was lost: not seen since {seen_at}"
        moved += lifecycle.worker_lost(job, why) is not None
    return moved


def forgotten(worker: RemoteWorker) -> int:
    """runpod-python asks for work with `job_in_progress=0` when it holds no job: a job
    the hub still counts as this worker's was lost on the way (a take's answer that never
    reached it, a result it could not post, a restart under the same pod id). Jobs taken
    in the last moment are left alone: a second take of the same pod may be on its way."""
    held = Job.objects.filter(
        worker=worker, status=Status.IN_PROGRESS, started_at__lt=timezone.now() - TAKE_RACE
    ).select_related("worker__key")
    why = f"Remote worker {_named(worker)} asked for work without it (job_in_progress=0)"
    return sum(lifecycle.worker_lost(job, why) is not None for job in held.defer("input", "output"))


def _named(worker: RemoteWorker) -> str:
    return f"{worker.pod_id!r} (key {worker.key.name!r})"


def forget() -> int:
    """Remote workers not seen for FORGOTTEN_AFTER and holding no running job: their rows
    go (the jobs they ran keep their history; their `worker` becomes empty)."""
    old = RemoteWorker.objects.filter(seen_at__lt=timezone.now() - FORGOTTEN_AFTER).exclude(
        jobs__status=Status.IN_PROGRESS
    )
    return old.delete()[1].get("jobs.RemoteWorker", 0)


def take(worker: RemoteWorker, endpoint: Endpoint, count: int) -> list[Job]:
    """Claim up to `count` queued jobs of the endpoint for `worker`, oldest first (low
    priority last). Queue Start is sent first when the hub was idle (queue.enter), only
    when there is something to take: an idle look costs one indexed read. Candidates
    other takers claimed first are passed over for the next ones, so a burst shared by
    many workers does not send them away empty-handed while jobs wait."""
    queued = Job.objects.filter(endpoint=endpoint, status=Status.IN_QUEUE)
    oldest = queued.order_by("low_priority", "created_at").values_list("pk", flat=True)
    taken: list[Job] = []
    tried: list[str] = []
    while len(taken) < count:
        ids = list(oldest.exclude(pk__in=tried)[: (count - len(taken)) * CANDIDATES])
        if not ids:
            break
        if not tried:
            queue.enter()
        tried += ids
        taken += _claimed(worker, ids, count - len(taken))
    if tried and not taken:
        queue.leave()
    return taken


def _claimed(worker: RemoteWorker, ids: list[str], count: int) -> list[Job]:
    """Up to `count` of these jobs, claimed for `worker` (those still queued)."""
    taken: list[Job] = []
    found = Job.objects.select_related("endpoint", "user").in_bulk(ids)
    for job in (found[pk] for pk in ids if pk in found):
        if len(taken) == count:
            break
        if job.ttl_expired():
            lifecycle.finish(
                job, Status.TIMED_OUT, error="The job's ttl expired before it started."
            )
        elif lifecycle.start(job, worker=worker):
            taken.append(job)
    return taken


def as_taken(job: Job) -> dict:
    """The job as RunPod's job-take hands it to runpod-python (`id`, `input`)."""
    return {"id": job.id, "input": job.input}


def held(worker: RemoteWorker, job_id: str) -> Job | None:
    return Job.objects.select_related("endpoint", "user").filter(pk=job_id, worker=worker).first()


def stream(job: Job, body: dict) -> bool:
    """One chunk runpod-python posts for a generator handler (`{"output": chunk}`), for
    /stream as an in-process chunk. False when the job is not running any more."""
    if job.status != Status.IN_PROGRESS:
        return False
    last = job.chunks.aggregate(last=Max("seq"))["last"]
    Chunk.objects.create(job=job, seq=0 if last is None else last + 1, output=body.get("output"))
    return True


def progressed(job: Job, body: dict) -> bool:
    """runpod-python's progress_update posts `{"status": "IN_PROGRESS", "output": …}` to
    the result URL: the job's latest progress (/status shows it while it runs), not its
    end."""
    return bool(
        Job.objects.filter(pk=job.pk, status=Status.IN_PROGRESS).update(progress=body.get("output"))
    )


def result(job: Job, body: dict, *, is_stream: bool) -> bool:
    """The job's end as runpod-python posts it: `error` (a string, its handler's error
    JSON, or anything else kept as JSON) fails it with its `output` kept; otherwise it
    completes with `output` (a generator's: its chunks when the endpoint aggregates its
    stream). `stopPod` (refresh_worker) is the worker's own business. False for a job
    already ended (a duplicate, ignored)."""
    error = body.get("error")
    if error:
        text = error if isinstance(error, str) else json.dumps(error)
        ended = lifecycle.finish(job, Status.FAILED, output=body.get("output"), error=text)
    else:
        output = body.get("output")
        if is_stream and job.endpoint.aggregate_stream:
            output = list(job.chunks.values_list("output", flat=True))
        ended = lifecycle.finish(job, Status.COMPLETED, output=output)
    if ended:
        queue.leave()
    return ended


def too_large(job: Job, error: str) -> None:
    """A result over the job's payload limit: the job fails (it would never end; RunPod
    answers such a result 400 and the job never completes)."""
    if lifecycle.finish(job, Status.FAILED, error=error):
        queue.leave()


def to_stop(worker: RemoteWorker) -> list[str]:
    """The jobs this worker took that were cancelled or timed out since it was lost-time
    ago: what it must stop (runpod-python's stop channel)."""
    since = timezone.now() - lost_after()
    stopped = Job.objects.filter(
        worker=worker, status__in=[Status.CANCELLED, Status.TIMED_OUT], completed_at__gte=since
    )
    return list(stopped.values_list("pk", flat=True))


def ping(worker: RemoteWorker) -> None:
    """A heartbeat: the worker is live, and so are the jobs it holds."""
    Job.objects.filter(worker=worker, status=Status.IN_PROGRESS).update(heartbeat_at=worker.seen_at)


def environment(hub_url: str, endpoint: str, key: str = "<worker key>") -> dict[str, str]:
    """The environment lines a stock runpod-python worker needs to serve `endpoint` from
    any machine (RUNPOD_POD_ID: any name unique among its workers). The `?` ends each
    URL because the SDK appends its own `&…` parameters."""
    base = f"{hub_url.rstrip('/')}/v2/{endpoint}"
    return {
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?",
        "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID",
        "RUNPOD_AI_API_KEY": key,
        "RUNPOD_POD_ID": "worker-1",
    }

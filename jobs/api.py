"""The RunPod-compatible job API's views: /v2/<endpoint>/run, runsync, status, stream,
cancel, retry, health, purge-queue (and tag, pin and unpin, the hub's additions). Their routes, token
auth and JSON refusals are jobs/openapi.py's, on the API kit (apikit)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apikit import bodies
from apikit.errors import ApiError, render
from jobs import lifecycle, waiters, workers
from jobs.models import Chunk, Endpoint, Job, new_sync_job_id
from jobs.schemas import MAX_TAGS_PER_JOB, RunIn, TagIn, input_limit
from jobs.wording import NO_ROUTE, RUNPOD
from namespaces import access

Status = Job.Status
WAIT_DEFAULT_MS, WAIT_MIN_MS, WAIT_MAX_MS = 90_000, 1_000, 300_000


def on_endpoint(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """The view with its endpoint looked up by name: an unknown or inactive one is a 404.
    (The method and the token are checked before, by the route: jobs/openapi.py.)"""

    @wraps(view)
    def wrapped(request: HttpRequest, endpoint: str, *args: str) -> JsonResponse:
        found = Endpoint.objects.filter(name=endpoint, active=True).first()
        if found is None:
            raise ApiError(f"No endpoint named {endpoint!r}.", status=404)
        return view(request, found, *args)

    return wrapped


def _submit(request: HttpRequest, endpoint: Endpoint, limit: int, **fields) -> Job:
    """A job from the body: its `input` at most `limit` bytes (as json.dumps writes it),
    the body at most that and the kit's headroom."""
    body = bodies.validated(
        RunIn, bodies.read(request, carries=limit), RUNPOD, {"input_limit": limit}
    )
    fields.update(body.job_fields())
    if body.namespace is not None:
        fields["namespace"] = access.member_namespace(request.user, body.namespace)
        if fields["namespace"] is None:  # unknown and not-a-member answer alike
            raise ApiError(
                f"No namespace {body.namespace!r} that you are a member of.", "namespace"
            )
    return lifecycle.submit(Job(endpoint=endpoint, user=request.user, **fields))


def _own(request: HttpRequest, endpoint: Endpoint, job_id: str) -> Job:
    """The caller's job (staff: anyone's), its input left in the database until asked
    for (no answer of these routes shows it; it may be 20 MB)."""
    jobs = Job.objects.select_related("endpoint", "user").defer("input")
    jobs = jobs.filter(endpoint=endpoint)
    if not request.user.is_staff:
        jobs = jobs.filter(user=request.user)
    job = jobs.filter(pk=job_id).first()
    if job is None:  # someone else's job is not found either
        raise ApiError(f"No job {job_id!r} on endpoint {endpoint.name!r}.", "id", status=404)
    if job.ttl_expired():  # as RunPod's: gone once its ttl ran out, whatever it did
        raise ApiError(
            f"Job {job_id!r} has expired: its ttl of {job.ttl_ms} ms ran out.", "id", status=404
        )
    if job.result_expired():  # the sweeper deletes it soon
        raise ApiError(
            f"Job {job_id!r} has expired: results are kept {job.result_kept_for()} s after "
            "a job finishes.", "id", status=404,
        )  # fmt: skip
    return job


@on_endpoint
def run(request: HttpRequest, endpoint: Endpoint) -> JsonResponse:
    job = _submit(request, endpoint, input_limit(sync=False))
    return JsonResponse({"id": job.id, "status": job.status})


@on_endpoint
def runsync(request: HttpRequest, endpoint: Endpoint) -> JsonResponse:
    raw_wait = request.GET.get("wait", str(WAIT_DEFAULT_MS))
    if not raw_wait.isdigit() or not WAIT_MIN_MS <= int(raw_wait) <= WAIT_MAX_MS:
        raise ApiError(f"?wait must be between {WAIT_MIN_MS} and {WAIT_MAX_MS} ms.", "wait")
    try:
        with waiters.slot(request.user.pk):  # before submitting: a refusal queues nothing
            job_id = _submit(request, endpoint, input_limit(sync=True), id=new_sync_job_id()).pk
            deadline = time.monotonic() + int(raw_wait) / 1000
            while time.monotonic() < deadline:
                if _status(job_id) in Job.FINAL:
                    break
                time.sleep(getattr(settings, "RUNSYNC_POLL", 0.05))
    except waiters.Busy as exc:
        raise ApiError(
            f"{exc}; use /run and /status, or try again shortly.", status=429,
            headers={"Retry-After": "1"},
        ) from None  # fmt: skip
    # Its input stays in the database: the answer does not show it, and it may be 20 MB.
    return JsonResponse(Job.objects.defer("input").get(pk=job_id).status_json())


def _status(job_id: str) -> str | None:
    """The job's status now: its row's status alone (runsync asks 20 times a second)."""
    return Job.objects.filter(pk=job_id).values_list("status", flat=True).first()


@on_endpoint
def status(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    return JsonResponse(_own(request, endpoint, job_id).status_json())


@on_endpoint
def stream(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    """The chunks a generator handler yielded since the last call (each is handed out
    once, as RunPod's /stream does), and the job's status read before them: a final
    status with no chunks means the stream is over."""
    job = _own(request, endpoint, job_id)
    reader = uuid.uuid4()
    Chunk.objects.filter(job=job, read_by=None).update(read_by=reader)
    chunks = Chunk.objects.filter(job=job, read_by=reader).values_list("output", flat=True)
    return JsonResponse({"status": job.status, "stream": [{"output": output} for output in chunks]})


@on_endpoint
def cancel(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    job = _own(request, endpoint, job_id)
    lifecycle.cancel(job)
    job.refresh_from_db()
    return JsonResponse({"id": job.id, "status": job.status})


@on_endpoint
def retry(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    job = _own(request, endpoint, job_id)
    if not lifecycle.retry(job):
        raise ApiError(
            f"Only FAILED or TIMED_OUT jobs can be retried; this one is {job.status}.", "status"
        )
    return JsonResponse({"id": job.id, "status": Status.IN_QUEUE})


@on_endpoint
def tag(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    job = _own(request, endpoint, job_id)
    tags = bodies.validated(TagIn, bodies.read(request), RUNPOD).tags
    if len(set(job.tags) | set(tags)) > MAX_TAGS_PER_JOB:
        raise ApiError(f"A job has at most {MAX_TAGS_PER_JOB} tags.", "tags")
    added = lifecycle.tag(job, tags, request.user)
    job.refresh_from_db()
    return JsonResponse({"id": job.id, "tags": job.tags, "added": added})


@on_endpoint
def pin(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    job = _own(request, endpoint, job_id)
    changed = lifecycle.pin(job, True)
    return JsonResponse({"id": job.id, "pinned": True, "changed": changed})


@on_endpoint
def unpin(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    job = _own(request, endpoint, job_id)
    changed = lifecycle.pin(job, False)
    return JsonResponse({"id": job.id, "pinned": False, "changed": changed})


@on_endpoint
def health(request: HttpRequest, endpoint: Endpoint) -> JsonResponse:
    """The caller's own jobs (staff: everyone's), and the hub's job workers: running
    (jobs being run now, anyone's) and idle (the other live workers)."""
    jobs = Job.objects.filter(endpoint=endpoint)
    if not request.user.is_staff:
        jobs = jobs.filter(user=request.user)
    count = {s: jobs.filter(status=s).count() for s in Status.values}
    return JsonResponse(
        {
            "jobs": {
                "completed": count[Status.COMPLETED], "failed": count[Status.FAILED],
                "inProgress": count[Status.IN_PROGRESS], "inQueue": count[Status.IN_QUEUE],
                "cancelled": count[Status.CANCELLED], "timedOut": count[Status.TIMED_OUT],
                "retried": jobs.filter(retries__gt=0).count(),
            },
            "workers": workers.counts(),
        }
    )  # fmt: skip


@on_endpoint
def purge_queue(request: HttpRequest, endpoint: Endpoint) -> JsonResponse:
    queued = Job.objects.select_related("endpoint", "user").filter(
        endpoint=endpoint, status=Status.IN_QUEUE
    )
    if not request.user.is_staff:
        queued = queued.filter(user=request.user)
    removed = sum(lifecycle.cancel(job) for job in queued)
    return JsonResponse({"removed": removed, "status": "completed"})


@csrf_exempt
def no_such_route(request: HttpRequest) -> JsonResponse:
    return render(ApiError(NO_ROUTE.format(path=request.path), status=404))

"""RunPod's worker protocol, served to stock runpod-python workers on any machine: the
job-take (and job-take-batch), job-done, job-stream, ping and job-stop routes under
/v2/<endpoint>/, authenticated by a worker key (`Authorization: <RUNPOD_AI_API_KEY>`).
What each does to the jobs is jobs.remote's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from jobs import remote
from jobs.models import Endpoint, Job, RemoteWorker, WorkerKey

BATCH_MAX = 64  # jobs one job-take-batch hands out at most
TAKE_LOOK = 0.25  # seconds between looks at the queue while a take waits (long poll)


_lock = threading.Lock()
_holding = 0  # empty takes held open in this process now


@contextmanager
def holding() -> Iterator[bool]:
    """Room to hold an empty take open: at most JOB_TAKE_HOLDERS at once in one web
    process (default 2), so idle workers cannot hold every thread. Without room the take
    is answered 429 at once, and runpod-python waits 5 s before it asks again."""
    global _holding
    with _lock:
        room = _holding < settings.JOB_TAKE_HOLDERS
        _holding += room
    try:
        yield room
    finally:
        with _lock:
            _holding -= room


def take_wait() -> float:
    """How long an empty take is held open (RunPod's job-take is a long poll; the SDK asks
    again at once after a 204): JOB_TAKE_WAIT seconds, default 10."""
    return settings.JOB_TAKE_WAIT


def refusal(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def as_worker(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The view with the worker its key and pod id name: a missing, unknown or revoked
    key, or one for another endpoint, is a 401 and nothing is done."""

    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest, endpoint: str, pod_id: str, **more: str) -> HttpResponse:
        header = request.headers.get("Authorization", "").strip()
        raw = header.removeprefix("Bearer ").strip()
        key = WorkerKey.authenticate(raw)
        found = Endpoint.objects.filter(name=endpoint, active=True).first()
        if key is None or found is None or not key.serves(found):
            return refusal("Unauthorized: send Authorization: <worker key>.", 401)
        return view(request, found, remote.seen(key, pod_id), **more)

    return wrapped


@as_worker
def take(request: HttpRequest, endpoint: Endpoint, worker: RemoteWorker) -> HttpResponse:
    return _take(request, endpoint, worker, 1)


@as_worker
def take_batch(request: HttpRequest, endpoint: Endpoint, worker: RemoteWorker) -> HttpResponse:
    size = request.GET.get("batch_size", "1")
    if not size.isdigit() or not 1 <= int(size) <= BATCH_MAX:
        return refusal(f"batch_size must be between 1 and {BATCH_MAX}.", 400)
    return _take(request, endpoint, worker, int(size), batch=True)


def _take(request, endpoint, worker, count: int, *, batch: bool = False) -> HttpResponse:
    if request.method != "GET":
        return refusal("Use GET here.", 405)
    remote.reclaim(endpoint)  # the jobs of its lost workers first, once per take
    if request.GET.get("job_in_progress") == "0":
        remote.forgotten(worker)
    jobs = remote.take(worker, endpoint, count)
    if not jobs:
        with holding() as room:
            if not room:
                return refusal("Too many workers are waiting here; ask again shortly.", 429)
            deadline = time.monotonic() + take_wait()
            while not jobs and time.monotonic() < deadline:
                time.sleep(TAKE_LOOK)
                jobs = remote.take(worker, endpoint, count)
    if not jobs:
        return HttpResponse(status=204)
    taken = [remote.as_taken(job) for job in jobs]
    return JsonResponse(taken if batch else taken[0], safe=False)


def _body(request: HttpRequest) -> dict | None:
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _posted(view):
    """A POST of runpod-python's about a job the worker holds: the job, and its JSON body
    (at most the job's payload limit)."""

    @wraps(view)
    def wrapped(request, endpoint: Endpoint, worker: RemoteWorker, job_id: str):
        if request.method != "POST":
            return refusal("Use POST here.", 405)
        job = remote.held(worker, job_id)
        if job is None or job.endpoint_id != endpoint.pk:
            return refusal(f"Job {job_id!r} is not held by worker {worker.pod_id!r}.", 404)
        limit = job.payload_limit()
        if len(request.body) > limit:  # RunPod answers 400 Bad Request
            error = f"The job's output is {len(request.body)} bytes; the limit is {limit}."
            remote.too_large(job, error)
            return refusal(error, 400)
        body = _body(request)
        if body is None:
            return refusal("The body must be a JSON object.", 400)
        return view(request, job, body)

    return wrapped


@as_worker
@_posted
def done(request: HttpRequest, job: Job, body: dict) -> JsonResponse:
    if body.get("status") == Job.Status.IN_PROGRESS:  # progress_update, not the end
        return JsonResponse({"id": job.id, "accepted": remote.progressed(job, body)})
    ended = remote.result(job, body, is_stream=request.GET.get("isStream") == "true")
    return JsonResponse({"id": job.id, "accepted": ended})


@as_worker
@_posted
def stream(request: HttpRequest, job: Job, body: dict) -> JsonResponse:
    return JsonResponse({"id": job.id, "accepted": remote.stream(job, body)})


@as_worker
def ping(request: HttpRequest, endpoint: Endpoint, worker: RemoteWorker) -> JsonResponse:
    remote.ping(worker)
    return JsonResponse({"status": "ok"})


@as_worker
def stop(request: HttpRequest, endpoint: Endpoint, worker: RemoteWorker) -> HttpResponse:
    """RunPod's stop channel: the jobs this worker holds that were cancelled or timed out
    lately (`jobsToStop`); 204 when none."""
    ids = remote.to_stop(worker)
    if not ids:
        return HttpResponse(status=204)
    return JsonResponse({"jobsToStop": ids})

"""The RunPod-compatible job API: /v2/<endpoint>/run, runsync, status, stream, cancel, retry,
health, purge-queue (and tag, the hub's addition). Bearer API tokens; JSON errors."""

from __future__ import annotations

import json
import time
import uuid
from functools import wraps

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

import hooks
from accounts.models import ApiToken
from apikit import jsonbody
from jobs import lifecycle, waiters, workers
from jobs.models import Chunk, Endpoint, Job, new_sync_job_id
from namespaces import access

Status = Job.Status
MIN_TIMEOUT_MS, MAX_MS = 5_000, 7 * 24 * 3600 * 1000
MIN_TTL_MS = 10_000
WAIT_DEFAULT_MS, WAIT_MIN_MS, WAIT_MAX_MS = 90_000, 1_000, 300_000
MAX_TAGS_PER_CALL, MAX_TAGS_PER_JOB = 20, 100
WEBHOOK_URL_MAX = Job._meta.get_field("webhook").max_length
BODY_OVERHEAD = 64 * 1024  # a body may exceed the input limit by this much (policy, tags, …)


class ApiError(Exception):
    def __init__(self, message: str, field: str = "", status: int = 400):
        super().__init__(message)
        self.message, self.field, self.status = message, field, status

    def response(self) -> JsonResponse:
        body = {"error": self.message}
        if self.field:
            body["field"] = self.field
        return JsonResponse(body, status=self.status)


def api(method: str):
    """The method, bearer-token auth, the endpoint lookup, and ApiError → JSON: every
    refusal of the job API is JSON."""
    return lambda view: _api(view, method)


def _api(view, method: str):
    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest, endpoint: str, *args, **kwargs):
        if request.method != method:
            response = JsonResponse({"error": f"Use {method} here."}, status=405)
            response["Allow"] = method
            return response
        token = ApiToken.objects.from_header(request.headers.get("Authorization", ""))
        if token is None:
            return JsonResponse(
                {"error": "Unauthorized: send Authorization: Bearer <API token> (or the bare "
                          "token, as RunPod's examples do)."}, status=401,
            )  # fmt: skip
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        request.user = token.user
        request.skip_activity = True  # a script with a token is not the person being there
        found = Endpoint.objects.filter(name=endpoint, active=True).first()
        if found is None:
            return JsonResponse({"error": f"No endpoint named {endpoint!r}."}, status=404)
        try:
            return view(request, found, *args, **kwargs)
        except ApiError as exc:
            return exc.response()

    return wrapped


def _body(request: HttpRequest) -> dict:
    try:
        return jsonbody.parse(request, hooks.settings().max_payload_bytes + BODY_OVERHEAD)
    except jsonbody.BodyError as exc:
        raise ApiError(exc.message, status=exc.status) from None


def _int(policy: dict, key: str, default: int, low: int, high: int) -> int:
    value = policy.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(f"policy.{key} must be a whole number of milliseconds.", f"policy.{key}")
    if not low <= value <= high:
        raise ApiError(f"policy.{key} must be between {low} and {high} ms.", f"policy.{key}")
    return value


def parse_submission(body: dict) -> dict:
    """Validate a RunPod request body; the error names the field."""
    if "input" not in body:
        raise ApiError("'input' is required.", "input")
    if not isinstance(body["input"], dict):
        raise ApiError("'input' must be a JSON object.", "input")
    size = len(json.dumps(body["input"]))
    limit = hooks.settings().max_payload_bytes
    if size > limit:
        raise ApiError(f"'input' is {size} bytes; the limit is {limit}.", "input")
    webhook = body.get("webhook") or ""
    if not isinstance(webhook, str):
        raise ApiError("'webhook' must be a URL string.", "webhook")
    if len(webhook) > WEBHOOK_URL_MAX:
        raise ApiError(f"'webhook' is longer than {WEBHOOK_URL_MAX} characters.", "webhook")
    if webhook:
        try:
            hooks.validate_target_url(webhook, user_supplied=True)
        except ValidationError as exc:
            raise ApiError(exc.messages[0], "webhook") from None
    policy = body.get("policy")
    policy = {} if policy is None else policy
    if not isinstance(policy, dict):
        raise ApiError("'policy' must be a JSON object.", "policy")
    low = policy.get("lowPriority", False)
    if not isinstance(low, bool):
        raise ApiError("policy.lowPriority must be true or false.", "policy.lowPriority")
    mode = policy.get("webhooks", Job.Webhooks.NORMAL)
    if mode not in Job.Webhooks.values:
        raise ApiError(
            "policy.webhooks must be 'none', 'normal', 'manual' or 'manual_at_end'.",
            "policy.webhooks",
        )
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags):
        raise ApiError("'tags' must be a list of short strings.", "tags")
    if len(tags) > MAX_TAGS_PER_CALL:
        raise ApiError(f"At most {MAX_TAGS_PER_CALL} tags per request.", "tags")
    namespace = body.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and 0 < len(namespace) <= 700):
        raise ApiError("'namespace' must be a namespace's path, e.g. \"acme/ci\".", "namespace")
    return {
        "input": body["input"],
        "namespace": namespace,
        "webhook": webhook,
        "execution_timeout_ms": _int(policy, "executionTimeout", 600_000, MIN_TIMEOUT_MS, MAX_MS),
        "ttl_ms": _int(policy, "ttl", 86_400_000, MIN_TTL_MS, MAX_MS),
        "low_priority": low,
        "webhooks_mode": mode,
        "tags": list(dict.fromkeys(tags)),
    }


def _submit(request: HttpRequest, endpoint: Endpoint, **fields) -> Job:
    fields.update(parse_submission(_body(request)))
    path = fields.pop("namespace")
    if path is not None:
        fields["namespace"] = access.member_namespace(request.user, path)
        if fields["namespace"] is None:  # unknown and not-a-member answer alike
            raise ApiError(f"No namespace {path!r} that you are a member of.", "namespace")
    return lifecycle.submit(Job(endpoint=endpoint, user=request.user, **fields))


def _own(request: HttpRequest, endpoint: Endpoint, job_id: str) -> Job:
    jobs = Job.objects.select_related("endpoint", "user").filter(endpoint=endpoint)
    if not request.user.is_staff:
        jobs = jobs.filter(user=request.user)
    job = jobs.filter(pk=job_id).first()
    if job is None:  # someone else's job is not found either
        raise ApiError(f"No job {job_id!r} on endpoint {endpoint.name!r}.", "id", status=404)
    if job.result_expired():  # the sweeper deletes it soon
        raise ApiError(
            f"Job {job_id!r} has expired: results are kept {job.result_kept_for()} s after "
            "a job finishes.", "id", status=404,
        )  # fmt: skip
    return job


@api("POST")
def run(request: HttpRequest, endpoint: Endpoint) -> JsonResponse:
    job = _submit(request, endpoint)
    return JsonResponse({"id": job.id, "status": job.status})


@api("POST")
def runsync(request: HttpRequest, endpoint: Endpoint) -> JsonResponse:
    raw_wait = request.GET.get("wait", str(WAIT_DEFAULT_MS))
    if not raw_wait.isdigit() or not WAIT_MIN_MS <= int(raw_wait) <= WAIT_MAX_MS:
        raise ApiError(f"?wait must be between {WAIT_MIN_MS} and {WAIT_MAX_MS} ms.", "wait")
    try:
        with waiters.slot(request.user.pk):  # before submitting: a refusal queues nothing
            job = _submit(request, endpoint, id=new_sync_job_id())
            deadline = time.monotonic() + int(raw_wait) / 1000
            while time.monotonic() < deadline:
                job.refresh_from_db()
                if job.is_final:
                    break
                time.sleep(getattr(settings, "RUNSYNC_POLL", 0.05))
    except waiters.Busy as exc:
        busy = ApiError(f"{exc}; use /run and /status, or try again shortly.", status=429)
        response = busy.response()
        response["Retry-After"] = "1"
        return response
    return JsonResponse(job.status_json())


@api("GET")
def status(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    return JsonResponse(_own(request, endpoint, job_id).status_json())


@api("GET")
def stream(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    """The chunks a generator handler yielded since the last call (each is handed out
    once, as RunPod's /stream does), and the job's status read before them: a final
    status with no chunks means the stream is over."""
    job = _own(request, endpoint, job_id)
    reader = uuid.uuid4()
    Chunk.objects.filter(job=job, read_by=None).update(read_by=reader)
    chunks = Chunk.objects.filter(job=job, read_by=reader).values_list("output", flat=True)
    return JsonResponse({"status": job.status, "stream": [{"output": output} for output in chunks]})


@api("POST")
def cancel(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    job = _own(request, endpoint, job_id)
    lifecycle.cancel(job)
    job.refresh_from_db()
    return JsonResponse({"id": job.id, "status": job.status})


@api("POST")
def retry(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    job = _own(request, endpoint, job_id)
    if not lifecycle.retry(job):
        raise ApiError(
            f"Only FAILED or TIMED_OUT jobs can be retried; this one is {job.status}.", "status"
        )
    return JsonResponse({"id": job.id, "status": Status.IN_QUEUE})


@api("POST")
def tag(request: HttpRequest, endpoint: Endpoint, job_id: str) -> JsonResponse:
    job = _own(request, endpoint, job_id)
    tags = _body(request).get("tags")
    if (
        not isinstance(tags, list)
        or not tags
        or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags)
    ):
        raise ApiError("'tags' must be a non-empty list of short strings.", "tags")
    if len(tags) > MAX_TAGS_PER_CALL:
        raise ApiError(f"At most {MAX_TAGS_PER_CALL} tags per request.", "tags")
    if len(set(job.tags) | set(tags)) > MAX_TAGS_PER_JOB:
        raise ApiError(f"A job has at most {MAX_TAGS_PER_JOB} tags.", "tags")
    added = lifecycle.tag(job, tags)
    job.refresh_from_db()
    return JsonResponse({"id": job.id, "tags": job.tags, "added": added})


@api("GET")
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


@api("POST")
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
    return JsonResponse({"error": f"No job API route {request.path!r}."}, status=404)

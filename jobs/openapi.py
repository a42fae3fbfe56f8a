"""The /v2 job API's routes as a django-ninja API on the API kit, so the hub's OpenAPI
document is generated from the routes that serve them. Each documented operation takes
the kit's token auth (bearer or RunPod's bare key) and hands the request to its view in
jobs.api; the other methods on a route answer a JSON 405 with Allow, before any token
is asked for; every refusal is the kit's JSON in RunPod's wording (jobs/wording.py)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, JsonResponse
from ninja import NinjaAPI
from pydantic import BaseModel

from apikit import bodies, handlers
from apikit.auth import TokenAuth
from apikit.errors import ApiError, documented
from hooks import VERSION
from jobs import api
from jobs.schemas import Health, JobRef, JobStatus, Pinned, Purged, RunIn, StreamOut, Tagged, TagIn
from jobs.wording import RUNPOD, WRONG_METHOD

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ERRORS = documented(400, 401, 404, 405, 413)

jobs_api = NinjaAPI(
    title="webhookhub job API", version=VERSION, urls_namespace="jobs-v2",
    docs_url=None, openapi_url=None, auth=TokenAuth(),
)  # fmt: skip
handlers.install(jobs_api, RUNPOD)


def _operation(path: str, call: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """`call` as a ninja operation taking the path's parameters."""
    if "{job_id}" in path:

        def operation(request: HttpRequest, endpoint: str, job_id: str):
            return call(request, endpoint, job_id)
    else:

        def operation(request: HttpRequest, endpoint: str):
            return call(request, endpoint)

    return operation


def _wrong_method(method: str) -> Callable[..., JsonResponse]:
    def refuse(request: HttpRequest, *path: str) -> JsonResponse:
        message = WRONG_METHOD.format(method=method)
        raise ApiError(message, status=405, headers={"Allow": method})

    return refuse


def route(path: str, method: str, view, response, body: type[BaseModel] | None = None, **doc):
    """The documented operation, and the other methods (undocumented, no auth: a 405)."""
    operation = _operation(path, view)
    operation.__name__ = view.__name__
    operation.__doc__ = doc.pop("description", None)
    jobs_api.api_operation(
        [method], path, response={200: response, **ERRORS},
        openapi_extra=bodies.doc(body) if body else None,
        url_name=view.__name__, tags=["jobs (RunPod)"], **doc,
    )(operation)  # fmt: skip
    others = [m for m in METHODS if m != method]
    refusal = _operation(path, _wrong_method(method))
    jobs_api.api_operation(others, path, include_in_schema=False, auth=None)(refusal)


route(
    "/{endpoint}/run",
    "POST",
    api.run,
    JobRef,
    RunIn,
    summary="Queue a job",
    description="Queue a job; its result is kept JOB_RESULT_TTL after it ends.",
)
route(
    "/{endpoint}/runsync",
    "POST",
    api.runsync,
    JobStatus,
    RunIn,
    summary="Run and wait",
    description="Queue a job and wait (?wait= ms, default 90 000) for its end.",
)
route("/{endpoint}/status/{job_id}", "GET", api.status, JobStatus, summary="A job's status")
route("/{endpoint}/stream/{job_id}", "GET", api.stream, StreamOut, summary="New stream chunks")
route("/{endpoint}/cancel/{job_id}", "POST", api.cancel, JobRef, summary="Cancel a job")
route("/{endpoint}/retry/{job_id}", "POST", api.retry, JobRef, summary="Retry a failed job")
route("/{endpoint}/tag/{job_id}", "POST", api.tag, Tagged, TagIn, summary="Tag a job")
route(
    "/{endpoint}/pin/{job_id}",
    "POST",
    api.pin,
    Pinned,
    summary="Pin a job",
    description="Pin a job (Djinn's pinned builds); a namespace's job tells build.pinned.",
)
route(
    "/{endpoint}/unpin/{job_id}",
    "POST",
    api.unpin,
    Pinned,
    summary="Unpin a job",
    description="Unpin a job; a namespace's job tells build.unpinned.",
)
route("/{endpoint}/health", "GET", api.health, Health, summary="Job counts and workers")
route("/{endpoint}/purge-queue", "POST", api.purge_queue, Purged, summary="Cancel queued jobs")

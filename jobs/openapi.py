"""The /v2 job API's routes as a django-ninja API, so the hub's OpenAPI document is
generated from the routes that serve it. Each operation hands the request to its view
in jobs.api unchanged (that module parses and answers, RunPod's way: bare-token auth,
strict JSON, every refusal JSON); other methods on a route reach the same view, which
answers a JSON 405 with Allow."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import NinjaAPI, Schema
from pydantic import Field

from hooks import VERSION
from jobs import api

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
SECURITY = {"security": [{"TokenAuth": []}]}


class Error(Schema):
    error: str
    field: str | None = None


class Policy(Schema):
    executionTimeout: int = Field(600_000, description="ms a run may take (5 s to 7 days).")
    ttl: int = Field(86_400_000, description="ms the job may live, queued and running.")
    lowPriority: bool = False
    webhooks: Literal["none", "normal", "manual", "manual_at_end"] = Field(
        "normal", description="Which SwarmUI-style slot hooks this job fires."
    )


class RunIn(Schema):
    input: dict[str, Any] = Field(description="What the endpoint's handler receives.")
    webhook: str | None = Field(None, description="A callback URL: the final status is POSTed.")
    policy: Policy | None = None
    tags: list[str] = Field(default_factory=list, max_length=api.MAX_TAGS_PER_CALL)
    namespace: str | None = Field(None, description="A namespace you are a member of.")


class TagIn(Schema):
    tags: list[str] = Field(min_length=1, max_length=api.MAX_TAGS_PER_CALL)


class JobRef(Schema):
    id: str
    status: str


class JobStatus(JobRef):
    delayTime: int | None = None
    executionTime: int | None = None
    output: Any = None
    error: str | None = None


class Chunk(Schema):
    output: Any


class StreamOut(Schema):
    status: str
    stream: list[Chunk]


class Tagged(Schema):
    id: str
    tags: list[str]
    added: list[str]


class Health(Schema):
    jobs: dict[str, int]
    workers: dict[str, int]


class Purged(Schema):
    removed: int
    status: str


jobs_api = NinjaAPI(
    title="webhookhub job API", version=VERSION, urls_namespace="jobs-v2",
    docs_url=None, openapi_url=None,
)  # fmt: skip
ERRORS = {400: Error, 401: Error, 404: Error, 405: Error, 413: Error}


def _body(schema: type[Schema]) -> dict:
    content = {"application/json": {"schema": schema.model_json_schema()}}
    return {"requestBody": {"required": True, "content": content}, **SECURITY}


def route(path: str, method: str, view, response, body: type[Schema] | None = None, **doc):
    """The documented operation, and the other methods (undocumented) to the same view."""
    extra = _body(body) if body else SECURITY

    if "{job_id}" in path:

        def operation(request: HttpRequest, endpoint: str, job_id: str):
            return view(request, endpoint, job_id)
    else:

        def operation(request: HttpRequest, endpoint: str):
            return view(request, endpoint)

    operation.__name__ = view.__name__
    operation.__doc__ = doc.pop("description", None)
    jobs_api.api_operation(
        [method], path, response={200: response, **ERRORS}, openapi_extra=extra,
        url_name=view.__name__, tags=["jobs (RunPod)"], **doc,
    )(operation)  # fmt: skip
    others = [m for m in METHODS if m != method]
    jobs_api.api_operation(others, path, include_in_schema=False)(operation)


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
route("/{endpoint}/health", "GET", api.health, Health, summary="Job counts and workers")
route("/{endpoint}/purge-queue", "POST", api.purge_queue, Purged, summary="Cancel queued jobs")

"""The shapes the job API (/v2) takes and answers. The request bodies are validated by
these schemas (strict: a string is not a number, 1 is not true) and the OpenAPI document
is generated from them, so what the document shows is what is enforced; jobs/wording.py
words their errors as the job API does.

The bodies are plain pydantic models: a ninja Schema reads any object's attributes
(from_attributes), so `"policy": []` would pass as a policy of defaults."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from ninja import Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError

import hooks
from jobs.models import Job, payload_limit

MIN_TIMEOUT_MS, MAX_MS = 5_000, 7 * 24 * 3600 * 1000
MIN_TTL_MS = 10_000
MAX_TAGS_PER_CALL, MAX_TAGS_PER_JOB = 20, 100
TAG_MAX, NAMESPACE_MAX = 64, 700
WEBHOOK_URL_MAX = Job._meta.get_field("webhook").max_length
STRICT = ConfigDict(strict=True)


def input_limit(*, sync: bool = False) -> int:
    """The largest `input` /run (/runsync) takes, in bytes of its JSON: RunPod's payload
    limit (JOB_PAYLOAD_LIMIT, JOB_PAYLOAD_LIMIT_SYNC)."""
    return payload_limit(sync=sync)


def json_size(value: Any) -> int:
    """Bytes of `value`'s JSON as the hub stores and sends it (compact, UTF-8)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text) if text.isascii() else len(text.encode())


def _fits(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    """At most the route's `input_limit` (validation context), as `json_size` counts."""
    limit = (info.context or {}).get("input_limit") or input_limit()
    size = json_size(value)
    if size > limit:
        raise PydanticCustomError(
            "input_too_large", "{size} bytes; the limit is {limit}", {"size": size, "limit": limit}
        )
    return value


def _allowed_url(url: str) -> str:
    """The hub's rules for a URL a user supplies (SSRF); blank is no callback."""
    if url:
        try:
            hooks.validate_target_url(url, user_supplied=True)
        except ValidationError as exc:
            raise PydanticCustomError(
                "url_refused", "{reason}", {"reason": exc.messages[0]}
            ) from None
    return url


Tag = Annotated[str, Field(min_length=1, max_length=TAG_MAX)]
CallbackURL = Annotated[str, Field(max_length=WEBHOOK_URL_MAX), AfterValidator(_allowed_url)]
# SwarmUI's own spellings of its per-request `Webhooks` parameter, taken as the hub's.
SWARMUI_WEBHOOKS = {"None": "none", "Normal": "normal", "Manual": "manual",
                    "Manual At End": "manual_at_end"}  # fmt: skip


def _webhooks_mode(value: str) -> str:
    return SWARMUI_WEBHOOKS.get(value, value)


WebhooksMode = Annotated[
    Literal[(*Job.Webhooks.values, *SWARMUI_WEBHOOKS)],  # none, …, "Manual At End"
    AfterValidator(_webhooks_mode),
]
CallbackRule = Literal[tuple(Job.CallbackRule.values)]  # hub, runpod


class Policy(BaseModel):
    model_config = STRICT

    executionTimeout: int = Field(
        600_000, ge=MIN_TIMEOUT_MS, le=MAX_MS, description="ms a run may take (5 s to 7 days)."
    )
    ttl: int = Field(
        86_400_000, ge=MIN_TTL_MS, le=MAX_MS,
        description="ms the job may live, queued and running (10 s to 7 days).",
    )  # fmt: skip
    lowPriority: bool = False
    webhooks: WebhooksMode = Field(
        Job.Webhooks.NORMAL.value,
        description="Which SwarmUI-style slot hooks this job fires; SwarmUI's spellings "
        "(`None`, `Normal`, `Manual`, `Manual At End`) are taken too.",
    )
    callbackRule: CallbackRule = Field(
        Job.CallbackRule.HUB.value,
        description="The hub's addition: when the `webhook` callback counts as delivered. "
        "'hub': any 2xx, retried on JOB_CALLBACK_SCHEDULE (by default 0, 10, 10 s, then the "
        "hub's schedule). 'runpod': RunPod's rule, HTTP 200 only, attempts at 0, 10 and 10 s, "
        "then failed.",
    )


class RunIn(BaseModel):
    model_config = STRICT

    input: Annotated[dict[str, Any], AfterValidator(_fits)] = Field(
        description="What the endpoint's handler receives: at most 10 MB of JSON on /run, "
        "20 MB on /runsync (JOB_PAYLOAD_LIMIT, JOB_PAYLOAD_LIMIT_SYNC)."
    )
    webhook: CallbackURL | None = Field(
        None, description="A callback URL: the final status is POSTed."
    )
    policy: Policy | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS_PER_CALL)
    namespace: str | None = Field(
        None, min_length=1, max_length=NAMESPACE_MAX,
        description="A namespace you are a member of.",
    )  # fmt: skip

    def job_fields(self) -> dict[str, Any]:
        """The Job's fields this body sets (the namespace is the caller's to resolve)."""
        policy = self.policy or Policy()
        return {
            "input": self.input,
            "webhook": self.webhook or "",
            "execution_timeout_ms": policy.executionTimeout,
            "ttl_ms": policy.ttl,
            "low_priority": policy.lowPriority,
            "webhooks_mode": policy.webhooks,
            "callback_rule": policy.callbackRule,
            "tags": list(dict.fromkeys(self.tags)),
        }


class TagIn(BaseModel):
    model_config = STRICT

    tags: list[Tag] = Field(min_length=1, max_length=MAX_TAGS_PER_CALL)


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


class Pinned(Schema):
    id: str
    pinned: bool
    changed: bool = Field(description="False when it already was.")


class Health(Schema):
    jobs: dict[str, int]
    workers: dict[str, int]


class Purged(Schema):
    removed: int
    status: str

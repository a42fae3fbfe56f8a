"""Request bodies of both APIs: read strictly (jsonbody) under one size policy, validated
by the pydantic schema the OpenAPI document shows, and that schema told to django-ninja
(the operations read their bodies themselves, so ninja does not see it otherwise).

The size policy: a body may be as large as the largest JSON value it carries (an event's
payload, a job's input: `carries`, the hub's WEBHOOK_MAX_PAYLOAD_BYTES unless the route
says: /run 10 MB, /runsync 20 MB) plus HEADROOM for its other fields, or it is a 413
before it is parsed. The kit reads the body itself under that limit: Django's
DATA_UPLOAD_MAX_MEMORY_SIZE stays the limit of the site's forms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.http import HttpRequest
from pydantic import BaseModel, ValidationError

import hooks
from apikit import jsonbody
from apikit.errors import PLAIN, ApiError, Wording

# The largest other fields are a job's: its webhook URL (2000 characters), namespace
# path (700) and 20 tags of 64, as JSON encoders may write them (\u escapes, up to 12
# bytes a character), take up to about 47 KiB.
HEADROOM = 64 * 1024
S = TypeVar("S", bound=BaseModel)


def limit(carries: int | None = None) -> int:
    """The largest body a route takes, in bytes."""
    return (hooks.settings().max_payload_bytes if carries is None else carries) + HEADROOM


def read(request: HttpRequest, carries: int | None = None) -> dict[str, Any]:
    """The body's JSON object (an empty body is `{}`), or an ApiError (400, 413)."""
    try:
        return jsonbody.parse(request, limit(carries))
    except jsonbody.BodyError as exc:
        raise ApiError(exc.message, status=exc.status) from None


def validated(
    schema: type[S],
    body: dict[str, Any],
    wording: Wording = PLAIN,
    context: Mapping[str, Any] | None = None,
) -> S:
    """`body` as `schema`, or its first error as an ApiError worded by `wording`;
    `context` reaches the schema's validators (a route's own limits)."""
    try:
        return schema.model_validate(body, context=dict(context or {}))
    except ValidationError as exc:
        raise wording.invalid(exc.errors()) from None


def doc(schema: type[BaseModel], **more: Any) -> dict[str, Any]:
    """`openapi_extra` for an operation whose body is `schema`."""
    content = {"application/json": {"schema": schema.model_json_schema()}}
    return {"requestBody": {"required": True, "content": content}, **more}

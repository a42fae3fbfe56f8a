"""Request bodies of the API: parsed strictly (webhookhub.jsonbody), validated with a
pydantic schema into one clear JSON error, and described in the OpenAPI document (the
operations read the body themselves, so django-ninja is told its schema)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Schema
from pydantic import ValidationError

import hooks
from api import errors
from api.errors import ApiError
from webhookhub import jsonbody

OVERHEAD = 16 * 1024  # a body may exceed the payload limit by this much (its other fields)


def parse(request: HttpRequest) -> dict:
    try:
        return jsonbody.parse(request, hooks.settings().max_payload_bytes + OVERHEAD)
    except jsonbody.BodyError as exc:
        raise ApiError(exc.message, status=exc.status) from None


def validated(schema: type[Schema], body: dict) -> Schema:
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise errors.from_pydantic(exc.errors()) from None


def doc(schema: type[Schema], **more) -> dict:
    """`openapi_extra` for an operation whose body is `schema`."""
    content = {"application/json": {"schema": schema.model_json_schema()}}
    return {"requestBody": {"required": True, "content": content}, **more}

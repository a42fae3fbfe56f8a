"""One refusal type for both APIs, its JSON shape `{"error": "…", "field": "…"}` (field
left out when no one field is to blame), and `Wording`: how an API words the refusals
the kit makes for it (a missing token, pydantic's validation errors)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from django.http import JsonResponse
from ninja import Schema
from pydantic import Field


class ApiError(Exception):
    """A refusal: rendered as JSON with its status and any headers (Allow, Retry-After)."""

    def __init__(
        self,
        message: str,
        field: str = "",
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.message, self.field, self.status = message, field, status
        self.headers = dict(headers or {})


class Error(Schema):
    """A refusal: what is wrong, and the field to blame when it is one."""

    error: str = Field(examples=["type: Field required."])
    field: str | None = Field(None, description="Where the problem is, when it is one field.")


def render(exc: ApiError) -> JsonResponse:
    body = {"error": exc.message, **({"field": exc.field} if exc.field else {})}
    response = JsonResponse(body, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def documented(*statuses: int) -> dict[int, type[Error]]:
    """`response=` entries for an operation's refusals."""
    return dict.fromkeys(statuses, Error)


# A field's dotted path (names only, list indices left out) → pydantic's error type
# ("*": any other type) → the message, formatted with the error's ctx.
FieldMessages = Mapping[str, Mapping[str, str]]


@dataclasses.dataclass(frozen=True)
class Wording:
    """How one API words the refusals the kit makes for it. An error `fields` does not
    name is pydantic's own message after its dotted location ("type: Field required.")."""

    unauthorized: str = "Unauthorized: send Authorization: Bearer <API token>."
    fields: FieldMessages = dataclasses.field(default_factory=dict)

    def invalid(self, errors: Sequence[Mapping[str, Any]]) -> ApiError:
        """The first of pydantic's errors as one refusal naming its field."""
        first = errors[0]
        loc = [step for step in first.get("loc", ()) if step != "body"]
        named = ".".join(step for step in loc if isinstance(step, str))
        worded = self.fields.get(named, {})
        message = worded.get(first.get("type", ""), worded.get("*"))
        if message is not None:
            return ApiError(message.format_map(first.get("ctx") or {}), named)
        where = ".".join(str(step) for step in loc)
        said = first.get("msg", "invalid")
        return ApiError(f"{where}: {said}." if where else said, where)


PLAIN = Wording()  # /api/v1's

"""Strict JSON request bodies for the hub's APIs: no NaN or infinities (a database's JSON
column refuses them), nesting no deeper than Python's parser allows, no lone surrogates,
a size limit; an object at the top."""

from __future__ import annotations

import json
import math

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest


class BodyError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def _not_a_number(constant: str):
    raise ValueError(f"{constant} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse(request: HttpRequest, limit: int) -> dict:
    """The body's JSON object (an empty body is `{}`), or BodyError saying what is wrong."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raw = None
    if raw is None or len(raw) > limit:
        raise BodyError(f"The request body is larger than {limit} bytes.", status=413)
    try:
        body = json.loads(raw or b"{}", parse_constant=_not_a_number, parse_float=_finite)
        json.dumps(body, ensure_ascii=False).encode()  # lone surrogates cannot be stored
    except RecursionError:
        raise BodyError("The request body is nested too deeply.") from None
    except UnicodeError:
        raise BodyError("The request body holds text that is not valid Unicode.") from None
    except ValueError as exc:
        raise BodyError(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BodyError("The request body must be a JSON object.")
    return body

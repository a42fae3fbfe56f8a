"""Strict JSON request bodies for the hub's APIs: no NaN or infinities (a database's JSON
column refuses them), objects and lists nested at most MAX_DEPTH levels, no lone
surrogates, a size limit; an object at the top.

The depth limit: what the hub does with a body afterwards (the route events' capture,
templates, the job pages' indented JSON, filters) walks it recursively, and Python's
stack ends near 1,000 frames; a body deeper than that would be stored, then fail after
the work was done. Refused here, it is refused before anything is written."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.http import HttpRequest

MAX_DEPTH = 100  # levels of objects and lists, the top one counted: docs/api.md


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


def _raw(request: HttpRequest, limit: int) -> bytes | None:
    """The body's bytes, or None when it is over `limit`: read here under the route's own
    limit, not Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, for the site's forms), as a
    job's input may be 20 MB. A larger Content-Length is refused unread; the bytes read
    become `request.body` for whatever looks at it later (the route events)."""
    if hasattr(request, "_body"):  # read before
        return request._body if len(request._body) <= limit else None
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return None
    request._body = request.read()  # Django's own `body` reads it so, up to the length
    return request._body


def _may_hold_surrogates(raw: bytes) -> bool:
    """A surrogate written as an escape (`\\ud800`), or as UTF-8 bytes (which Python's
    JSON parser lets through), or a body not in UTF-8: only then is it looked at closely."""
    utf8 = json.detect_encoding(raw) in ("utf-8", "utf-8-sig")
    return not utf8 or SURROGATE.search(raw) is not None


SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def deeper_than(value: Any, levels: int) -> bool:
    """Whether `value` nests objects and lists more than `levels` deep (`{}` is one
    level, `[[1]]` two, a number none). Level by level, without recursion, so any depth
    is measured; the time is the number of values."""
    level = [value]
    for _ in range(levels):
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
        ]
    return any(isinstance(node, dict | list) for node in level)


def too_deep(raw: bytes, value: Any) -> bool:
    """Whether a parsed body nests deeper than MAX_DEPTH (most bodies have too few
    brackets, in strings or not, to be measured)."""
    return raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and deeper_than(value, MAX_DEPTH)


def parse(request: HttpRequest, limit: int) -> dict:
    """The body's JSON object (an empty body is `{}`), or BodyError saying what is wrong."""
    raw = _raw(request, limit)
    if raw is None:
        raise BodyError(f"The request body is larger than {limit} bytes.", status=413)
    try:
        body = json.loads(raw or b"{}", parse_constant=_not_a_number, parse_float=_finite)
        if _may_hold_surrogates(raw):  # a lone one cannot be stored
            json.dumps(body, ensure_ascii=False).encode()
    except RecursionError:
        raise BodyError(DEEP) from None
    except UnicodeError:
        raise BodyError("The request body holds text that is not valid Unicode.") from None
    except ValueError as exc:
        raise BodyError(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BodyError("The request body must be a JSON object.")
    if too_deep(raw, body):
        raise BodyError(DEEP)
    return body


DEEP = f"The request body nests objects and lists more than {MAX_DEPTH} levels deep."

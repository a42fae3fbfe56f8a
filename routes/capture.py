"""The request and response of a matched call, as a route webhook's payload carries them:
JSON bodies as JSON, others as text, each cut at ROUTE_BODY_LIMIT bytes; credentials
never included.

Left out or masked: every header (so Authorization and cookies: the session id), any
field whose name says it is a credential (password, secret, token, api key, csrf,
session, at any depth, in JSON and form bodies and the query string), the fields Django
was told are sensitive (`sensitive_post_parameters`), anything that looks like a secret
or token the hub issues (`whsec_…`, `whk_…`) or a CSRF token in a page, and the body
of a response marked `Cache-Control: no-store` (a page showing a new token or secret).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import regex
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apikit import jsonbody

MASK = "********"
CREDENTIAL_NAME = regex.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|auth|csrf|session|cookie|credential|"
    r"private[-_]?key",
    regex.IGNORECASE,
)
SECRET_VALUE = regex.compile(
    r"whsec_[A-Za-z0-9+/=]+|whk_[A-Za-z0-9_\-]+|"
    r"(?<=name=[\"']csrfmiddlewaretoken[\"'] value=[\"'])[^\"']+"
)
TAG_HEADER, TAG_PARAM = "X-Request-Tag", "tag"
WITHHELD = "[withheld: the response is marked Cache-Control: no-store]"
TOO_DEEP = f"[withheld: JSON nested more than {jsonbody.MAX_DEPTH} levels deep]"


def request_part(request: HttpRequest, raw_body: bytes) -> dict[str, Any]:
    sensitive = getattr(request, "sensitive_post_parameters", None) or []
    return {
        "method": request.method.lower(),
        "url": _url(request),
        "body": _body(raw_body, request.content_type, sensitive),
        "tag": request.headers.get(TAG_HEADER) or request.GET.get(TAG_PARAM, ""),
    }


def response_part(response: HttpResponse) -> dict[str, Any]:
    if "no-store" in response.get("Cache-Control", ""):
        body: Any = WITHHELD
    elif getattr(response, "streaming", False):
        body = "[a streamed response]"
    else:
        content_type = response.get("Content-Type", "").split(";")[0].strip()
        body = _body(response.content, content_type, [])
    return {"status": response.status_code, "body": body}


def _url(request: HttpRequest) -> str:
    query = [
        (k, MASK if _credential(k) else v)
        for k, v in parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    ]
    return request.path + (f"?{urlencode(query)}" if query else "")


def _credential(name: str) -> bool:
    return bool(CREDENTIAL_NAME.search(name))


def _body(raw: bytes, content_type: str, sensitive: list[str] | str) -> Any:
    limit = settings.ROUTE_BODY_LIMIT
    if not raw:
        return {} if content_type == "application/json" else ""
    if sensitive == "__ALL__":
        return MASK
    if content_type == "application/x-www-form-urlencoded":
        fields = parse_qsl(raw[:limit].decode("utf-8", "replace"), keep_blank_values=True)
        return {k: MASK if _credential(k) or k in sensitive else _text(v) for k, v in fields}
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return _json(raw) if len(raw) <= limit else _cut(raw, limit)
        except ValueError:
            pass  # not JSON after all: text
    return _cut(raw, limit)


def _json(raw: bytes) -> Any:
    """Masked, unless it nests deeper than the APIs take (jsonbody.MAX_DEPTH): masking
    walks it recursively, so it is withheld rather than walked."""
    try:
        value = json.loads(raw)
    except RecursionError:
        return TOO_DEEP
    return TOO_DEEP if jsonbody.too_deep(raw, value) else _masked(value)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if _credential(str(k)) else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return _text(value) if isinstance(value, str) else value


def _text(value: str) -> str:
    return SECRET_VALUE.sub(MASK, value)


def _cut(raw: bytes, limit: int) -> str:
    text = raw[:limit].decode("utf-8", "replace")
    return _text(text) + (f"… [{len(raw) - limit} more bytes]" if len(raw) > limit else "")

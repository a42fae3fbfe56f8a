"""The request and response of a matched call, as a route webhook's payload carries them:
JSON bodies as JSON, form bodies as an object, others as text, with credentials masked
(routes.scrub: by name and by shape, at any depth), cut at ROUTE_BODY_LIMIT bytes.

A body is read as JSON whatever its content type says (a `text/plain` job submission,
`requests.post(data=json_text)`), and so is a form body whose one key is JSON text
(`curl -d '{…}'`). Left out or masked besides: every header (so Authorization and
cookies: the session id), the form fields Django was told are sensitive
(`sensitive_post_parameters`) and every write-only field of the hub's forms
(routes.writeonly), the body of a response marked `Cache-Control: no-store` (a page
showing a new token or secret), HTML bodies unless ROUTE_HTML_BODIES is on (a page shows
what its forms and resources hold), and a JSON or form body over PARSE_LIMIT (too large
to check).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from routes import scrub, writeonly

TAG_HEADER, TAG_PARAM = "X-Request-Tag", "tag"
WITHHELD = "[withheld: the response is marked Cache-Control: no-store]"
HTML_WITHHELD = "[withheld: an HTML page (ROUTE_HTML_BODIES is off)]"
PARSE_LIMIT = 1024 * 1024  # bytes of a JSON or form body read; a larger one is left out
TOO_LARGE = "[withheld: a body of {size} bytes, larger than the {limit} checked]"
HTML_TYPES = ("text/html", "application/xhtml+xml")
FORM, MULTIPART = "application/x-www-form-urlencoded", "multipart/form-data"


def request_part(request: HttpRequest, raw_body: bytes) -> dict[str, Any]:
    sensitive = getattr(request, "sensitive_post_parameters", None) or []
    if request.content_type == MULTIPART:
        body = _multipart(request, sensitive)
    else:
        body = _body(raw_body, request.content_type, sensitive)
    return {
        "method": request.method.lower(),
        "url": _url(request),
        "body": body,
        "tag": scrub.text(request.headers.get(TAG_HEADER) or request.GET.get(TAG_PARAM, "")),
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
        (scrub.shapes(k), scrub.MASK if scrub.is_credential(k) else scrub.text(v))
        for k, v in parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    ]
    return request.path + (f"?{urlencode(query, safe='*')}" if query else "")


def _body(raw: bytes, content_type: str, sensitive: list[str] | str) -> Any:
    content_type = content_type.lower()
    if not raw:
        return {} if content_type == "application/json" else ""
    if sensitive == "__ALL__":
        return scrub.MASK
    if content_type in HTML_TYPES and not settings.ROUTE_HTML_BODIES:
        return HTML_WITHHELD
    json_like = raw.lstrip()[:1] in (b"{", b"[")
    if (json_like or content_type == FORM) and len(raw) > PARSE_LIMIT:
        return TOO_LARGE.format(size=len(raw), limit=PARSE_LIMIT)
    parsed = _json(raw) if json_like else None
    if parsed is not None:
        return _fit(parsed, len(raw))
    if content_type == FORM:
        fields = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return _fit(_form(fields, sensitive), len(raw))
    return _cut(raw)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None  # not JSON after all (or too deep to read): a form or text


def _form(fields: list[tuple[str, str]], sensitive: list[str]) -> Any:
    """The fields as an object, write-only ones masked (the rest is scrubbed as JSON is);
    or the JSON the one key is (`curl --data-urlencode '{…}'`)."""
    if len(fields) == 1 and not fields[0][1]:
        as_json = scrub.json_in(fields[0][0])
        if as_json is not None:
            return as_json
    write_only = writeonly.field_names()
    return {
        k: scrub.MASK if k in sensitive or writeonly.is_write_only(k, write_only) else v
        for k, v in fields
    }


def _multipart(request: HttpRequest, sensitive: list[str] | str) -> Any:
    """A multipart form's fields (its files left out), as the view parsed them."""
    if sensitive == "__ALL__":
        return scrub.MASK
    try:
        fields = [(k, v) for k, values in request.POST.lists() for v in values]
    except Exception:  # noqa: BLE001 - a body Django could not parse: nothing to show
        return ""
    return _fit(_form(fields, sensitive), sum(len(k) + len(v) for k, v in fields))


def _fit(value: Any, size: int) -> Any:
    """`value` scrubbed, or its JSON text cut at ROUTE_BODY_LIMIT bytes when longer (what
    lies beyond the cut is not scrubbed: it is never shown). `size`: the body's bytes."""
    limit = settings.ROUTE_BODY_LIMIT
    value = scrub.scrubbed(value, budget=limit)
    written = json.dumps(value, ensure_ascii=False).encode()
    if len(written) <= limit:
        return value
    more = max(len(written), size) - limit
    return written[:limit].decode("utf-8", "ignore") + f"… [{more} more bytes]"


def _cut(raw: bytes) -> str:
    limit = settings.ROUTE_BODY_LIMIT
    text = scrub.text(raw[: limit + scrub.MARGIN].decode("utf-8", "replace"))[:limit]
    return text + (f"… [{len(raw) - limit} more bytes]" if len(raw) > limit else "")

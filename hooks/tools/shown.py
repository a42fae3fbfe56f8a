"""A delivery's attempts as owners see them on their pages: bodies indented for reading."""

from __future__ import annotations

import json

from hooks.models import Attempt, Delivery


def readable(body: str) -> str:
    """A JSON body indented for reading; anything else as it was."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def attempts_of(delivery: Delivery) -> list[Attempt]:
    """Newest first, each with `shown_request` and `shown_response` (headers as recorded:
    credentials were masked when the attempt was stored)."""
    attempts = list(delivery.attempt_set.order_by("-number"))
    for attempt in attempts:
        attempt.shown_request = readable(attempt.request_body)
        attempt.shown_response = readable(attempt.response_body)
    return attempts

"""What owners see on their pages: a delivery's attempts (bodies indented for reading),
and which recent events a webhook's payload filter would have let through."""

from __future__ import annotations

import json

from django.utils.html import format_html

from hooks import catalog
from hooks.models import Attempt, Delivery, Event, Webhook
from hooks.outbox import filters

FILTER_PREVIEW = 20


def secret_shown_once(webhook_name: str, secret: str) -> str:
    """The message that shows a secret just made, this once, with a Copy button (the
    hub's copy.js)."""
    return format_html(
        "Signing secret of “{}”, shown this once: <code id='shown-secret'>{}</code> "
        "<button type='button' class='button' data-copy='shown-secret'>Copy</button> The "
        "replaced one, if any, keeps signing beside it for 24 hours: update the receiver "
        "within a day.",
        webhook_name, secret,
    )  # fmt: skip


def readable(body: str) -> str:
    """A JSON body indented for reading; anything else as it was."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def delivery_attempts(delivery: Delivery) -> list[Attempt]:
    """Newest first, each with `shown_request` and `shown_response` (headers as recorded:
    credentials were masked when the attempt was stored)."""
    attempts = list(delivery.attempt_set.order_by("-number"))
    for attempt in attempts:
        attempt.shown_request = readable(attempt.request_body)
        attempt.shown_response = readable(attempt.response_body)
    return attempts


def recent_events(webhook: Webhook, count: int) -> list[Event]:
    """The latest events this webhook subscribes to and would have been offered: of its
    scope's types, and its user's or namespace's own."""
    types = [t.name for t in catalog.event_types()
             if webhook.scope in t.scopes and webhook.subscribes_to(t.name)]  # fmt: skip
    events = Event.objects.filter(type__in=types)
    if webhook.scope == "user":
        events = events.filter(user=webhook.owner_id)
    elif webhook.scope == "namespace":
        events = events.filter(namespace=webhook.namespace)
    return list(events.order_by("-created_at")[:count])


def filter_preview(webhook: Webhook, count: int = FILTER_PREVIEW) -> list[tuple[Event, bool]]:
    """The last `count` events it subscribes to, newest first, each with whether its
    filter lets it through ([] without a filter)."""
    if webhook.payload_filter is None:
        return []
    return [(e, filters.matches(webhook.payload_filter, e.payload))
            for e in recent_events(webhook, count)]  # fmt: skip

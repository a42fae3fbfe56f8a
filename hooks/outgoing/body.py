"""The body a receiver gets: the webhook's JSON data template filled from the event, a
chat message for chat platforms, or the event payload."""

from __future__ import annotations

import json

from hooks.models import BodyFormat, Delivery
from hooks.outgoing import formats, templating


def encode_json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def body_for(delivery: Delivery) -> bytes:
    """The webhook's data template filled from the event, a chat message, or the payload."""
    event = delivery.event
    payload = event.payload if isinstance(event.payload, dict) else {}
    webhook = delivery.webhook
    template = webhook.data_template.strip() if webhook else ""
    if template:
        values = templating.flatten(payload)
        values.update(
            event_type=event.type, event_id=str(event.id), timestamp=event.created_at.isoformat()
        )
        return templating.render(template, values).encode()
    fmt = formats.effective(webhook.format, webhook.url) if webhook else BodyFormat.JSON
    if fmt != BodyFormat.JSON:
        return encode_json(formats.chat_body(fmt, formats.message(event.type, payload)))
    return encode_json(event.payload)

"""The body a receiver gets: the webhook's JSON data template filled from the event, a
chat message for chat platforms, or the event payload; and SwarmUI's `[discord_image]`
templates, sent to Discord as multipart with the event's image attached."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from hooks import catalog, largevalues
from hooks.largevalues import encode_json
from hooks.models import BodyFormat, Delivery
from hooks.outgoing import formats, templating

JSON = "application/json"


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str = JSON
    shown: str | None = None  # what history shows instead of the bytes (an attached file)

    def text(self) -> str:
        return self.shown if self.shown is not None else self.content.decode("utf-8", "replace")


def body_for(delivery: Delivery) -> Body:
    """The webhook's data template filled from the event, a chat message, or the payload.
    An event whose large values are kept apart (hooks.largevalues) sends each in its
    place; its history shows the same body built from the event's row, a preview in
    each one's place (a chat message is built from the row alone: it needs the fields,
    not the large values)."""
    event = delivery.event
    kept = event.payload if isinstance(event.payload, dict) else {}
    if not event.stored_apart:
        return _built(delivery, lambda: kept, lambda: encode_json(event.payload))
    values = getattr(event, "apart_values", None)
    if values is None:
        raise ValueError("The event's values kept apart were not loaded.")
    sent = _built(
        delivery,
        lambda: largevalues.joined(kept, values),
        lambda: largevalues.joined_json(kept, values),  # the plain body: values as stored
    )
    return replace(sent, shown=_built(delivery, lambda: kept, lambda: encode_json(kept)).text())


def _built(delivery: Delivery, payload: Callable[[], dict], plain: Callable[[], bytes]) -> Body:
    """The body from the payload (`payload()`); `plain()` is the plain JSON body."""
    event = delivery.event
    personalise = _personaliser(event.type)
    if personalise:
        sent, shown = personalise(payload(), delivery)
        return Body(encode_json(sent), shown=encode_json(shown).decode())
    webhook = delivery.webhook
    template = webhook.data_template.strip() if webhook else ""
    if template:
        attach, template = templating.split_discord_image(template)
        whole = payload()
        values = templating.flatten(whole)
        values.update(
            event_type=event.type, event_id=str(event.id), timestamp=event.created_at.isoformat()
        )
        rendered = templating.render(template, values).encode()
        image = data_url(whole.get("image")) if attach else None
        return multipart(rendered, *image) if image else Body(rendered)
    fmt = formats.effective(webhook.format, webhook.url) if webhook else BodyFormat.JSON
    if fmt != BodyFormat.JSON:
        row = event.payload if isinstance(event.payload, dict) else {}
        return Body(encode_json(formats.body(fmt, event.type, row)))
    return Body(plain())


def _personaliser(event_type: str):
    try:
        return catalog.get(event_type).personalise
    except catalog.UnknownEventType:
        return None  # an event of a type no longer registered: its payload as it is


def data_url(value) -> tuple[bytes, str] | None:
    """The bytes and media type of a base64 `data:image/…` URL, or None."""
    if not isinstance(value, str) or not value.startswith("data:image/"):
        return None
    head, sep, data = value.partition(",")
    media_type = head[len("data:") :].split(";")[0]
    if not sep or not head.endswith(";base64"):
        return None
    try:
        return base64.b64decode(data, validate=True), media_type
    except (binascii.Error, ValueError):
        return None


def multipart(payload_json: bytes, image: bytes, media_type: str) -> Body:
    """Discord's upload shape: the message as `payload_json` and the image as `files[0]`."""
    boundary = uuid.uuid4().hex
    name = "image." + (media_type.split("/")[1].split("+")[0] or "png")
    parts = [
        (f'Content-Disposition: form-data; name="payload_json"\r\nContent-Type: {JSON}', payload_json),
        (f'Content-Disposition: form-data; name="files[0]"; filename="{name}"\r\n'
         f"Content-Type: {media_type}", image),
    ]  # fmt: skip
    content = (
        b"".join(
            f"--{boundary}\r\n{head}\r\n\r\n".encode() + data + b"\r\n" for head, data in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    shown = f"{payload_json.decode('utf-8', 'replace')}\n[files[0]: {name}, {len(image)} bytes]"
    return Body(content, f"multipart/form-data; boundary={boundary}", shown)

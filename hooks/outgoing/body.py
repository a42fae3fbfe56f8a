"""The body a receiver gets: the webhook's JSON data template filled from the event, a
chat message for chat platforms, or the event payload; and SwarmUI's `[discord_image]`
templates, sent to Discord as multipart with the event's image attached (SwarmUI's
shape: the image as `file`, the filled template as `payload_json`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from hooks import catalog, largevalues
from hooks.largevalues import encode_json
from hooks.models import BodyFormat, Delivery
from hooks.outgoing import formats, images, templating
from hooks.outgoing.images import Image, NoImage

# Fetches an event's http(s) image for its upload, or raises NoImage (request.build's,
# through the SSRF guard); without one (the admin's preview) such an image is not fetched.
Fetcher = Callable[[str], Image]

JSON = "application/json"


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str = JSON
    shown: str | None = None  # what history shows instead of the bytes (an attached file)
    note: str = ""  # history's line on the image of a `[discord_image]` template

    def text(self) -> str:
        return self.shown if self.shown is not None else self.content.decode("utf-8", "replace")


def body_for(delivery: Delivery, fetch: Fetcher | None = None) -> Body:
    """The webhook's data template filled from the event, a chat message, or the payload.
    An event whose large values are kept apart (hooks.largevalues) sends each in its
    place; its history shows the same body built from the event's row, a preview in
    each one's place (a chat summary is built from the row alone: it needs the fields,
    not the large values; a chat message carrying a result from the whole payload). `fetch` gets a `[discord_image]` template's http(s) image."""
    event = delivery.event
    kept = event.payload if isinstance(event.payload, dict) else {}
    if not event.stored_apart:
        return _built(delivery, lambda: kept, lambda: encode_json(event.payload), fetch)
    values = getattr(event, "apart_values", None)
    if values is None:
        raise ValueError("The event's values kept apart were not loaded.")
    sent = _built(
        delivery,
        lambda: largevalues.joined(kept, values),
        lambda: largevalues.joined_json(kept, values),  # the plain body: values as stored
        fetch,
    )
    shown = _built(delivery, lambda: kept, lambda: encode_json(kept))
    return replace(sent, shown=shown.content.decode("utf-8", "replace") + sent.note)


def _built(
    delivery: Delivery,
    payload: Callable[[], dict],
    plain: Callable[[], bytes],
    fetch: Fetcher | None = None,
) -> Body:
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
        return _upload(rendered, whole.get("image"), fetch) if attach else Body(rendered)
    fmt = formats.effective(webhook.format, webhook.url) if webhook else BodyFormat.JSON
    if fmt != BodyFormat.JSON:
        # A summary needs the row's fields alone; a result (a job's output) is the
        # whole payload's, each large value in its place.
        if formats.carries_result(event.type):
            fields = payload()
        else:
            fields = event.payload if isinstance(event.payload, dict) else {}
        return Body(encode_json(formats.body(fmt, event.type, fields)))
    return Body(plain())


def _personaliser(event_type: str):
    try:
        return catalog.get(event_type).personalise
    except catalog.UnknownEventType:
        return None  # an event of a type no longer registered: its payload as it is


def _upload(payload_json: bytes, image, fetch: Fetcher | None) -> Body:
    """A `[discord_image]` template's body: the upload when the event's image is had (a
    `data:image/` URL, or an http(s) URL fetched), else the JSON alone, the history
    saying why."""
    try:
        got = images.from_data_url(image)
        if got is None and images.is_url(image) and fetch is not None:
            got = fetch(image)
    except NoImage as exc:
        note = f"\n[file not attached: {exc}]"
        return Body(payload_json, shown=payload_json.decode("utf-8", "replace") + note, note=note)
    return multipart(payload_json, got) if got else Body(payload_json)


def multipart(payload_json: bytes, image: Image) -> Body:
    """SwarmUI's upload (Utilities.MultiPartFormContentDiscordImage): the image as `file`
    (`image.<ext>`, its media type), then the filled template as `payload_json`."""
    boundary = uuid.uuid4().hex
    name = image.filename
    parts = [
        (f'Content-Disposition: form-data; name="file"; filename="{name}"; '
         f"filename*=utf-8''{name}\r\nContent-Type: {image.media_type}", image.data),
        (f'Content-Disposition: form-data; name="payload_json"\r\nContent-Type: {JSON}',
         payload_json),
    ]  # fmt: skip
    content = (
        b"".join(
            f"--{boundary}\r\n{head}\r\n\r\n".encode() + data + b"\r\n" for head, data in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    note = f"\n[file: {name}, {len(image.data)} bytes]"
    shown = payload_json.decode("utf-8", "replace") + note
    return Body(content, f"multipart/form-data; boundary={boundary}", shown, note)

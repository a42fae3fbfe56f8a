"""The `route.called` event: APIO's payload, with the delivery's own id and the
webhook's secret added when each delivery is sent (history shows the secret masked)."""

from __future__ import annotations

import logging

import hooks
from routes.models import RouteWebhook

log = logging.getLogger("routes.events")
CALLED = "route.called"
MASK = "********"
EXAMPLE = {
    "event": {"id": 1, "label": "job submitted"},
    "id": "70195486-8934-4a31-a504-a97a72c7f322",
    "request": {"method": "post", "url": "/v2/echo/run", "body": {"input": {"prompt": "hi"}},
                "tag": "tag-1"},
    "response": {"status": 200, "body": {"id": "5f1c…", "status": "IN_QUEUE"}},
    "secret": "whsec_…",
}  # fmt: skip


SAMPLE_CALL = {
    "event": {"id": 0, "label": "test event"},
    "request": {"method": "post", "url": "/api/example/path", "body": {"foo": "bar"},
                "tag": "test"},
    "response": {"status": 200, "body": {}},
}  # fmt: skip


def register() -> None:
    hooks.register_event_type(
        CALLED,
        "An API call matching a route event completed successfully (APIO's route webhooks; "
        "sent only to the route webhooks listening to that route event).",
        scopes=(hooks.SERVER,),
        example=EXAMPLE,
        summary="{event[label]}: {request[method]} {request[url]} → {response[status]}",
        personalise=personalise,
        kind="Route (APIO)",
    )


def personalise(payload: dict, delivery) -> tuple[dict, dict]:
    """APIO's key order: event, id (this delivery's), request, response, secret."""
    sent = {"event": payload.get("event"), "id": str(delivery.id),
            "request": payload.get("request"), "response": payload.get("response")}  # fmt: skip
    shown = dict(sent)
    secret = delivery.webhook.secret if delivery.webhook else ""
    if secret:
        sent["secret"], shown["secret"] = secret, MASK
    return sent, shown


def listeners(route_id: int) -> list[int]:
    return list(RouteWebhook.objects.filter(events=route_id).values_list("webhook_id", flat=True))


def fire(routes: list[tuple[int, str]], call: dict) -> None:
    """One event per matched route event, to the webhooks that listen to it. A failure
    here is logged and never turns the caller's successful response into an error."""
    for route_id, label in routes:
        webhooks = listeners(route_id)
        if not webhooks:
            continue
        try:
            hooks.emit(CALLED, {"event": {"id": route_id, "label": label}, **call},
                       webhooks=webhooks, audience=(hooks.SERVER,))  # fmt: skip
        except (hooks.PayloadTooLarge, TypeError) as exc:
            log.warning("Route event %r not sent: %s", label, exc)

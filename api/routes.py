"""Route events and route webhooks (APIO) over the management API, as APIO's own UI is a
REST client of its /webhooks, /webhooks/events, /{id}/history and /{id}/test: staff with
the admin's permissions on them. A route webhook's engine webhook is stored through
hooks.configure_webhook (the pages' rules); every change is audited with who made it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from api import schemas
from api.webhooks import delivery_out, refused, secret_change
from apikit import bodies
from apikit.errors import ApiError, documented
from hooks.models import Delivery
from routes import audit, configure
from routes.forms import RouteEventForm
from routes.models import RouteEvent, RouteWebhook

router = Router(tags=["route webhooks (APIO)"])
ERRORS = documented(400, 401, 403, 404)
HISTORY = 50


def _given(request: HttpRequest, schema) -> dict[str, Any]:
    """What the body sets (what it leaves out stays as it is)."""
    return bodies.validated(schema, bodies.read(request)).model_dump(exclude_unset=True)


def _allowed(request: HttpRequest, action: str, model: str) -> None:
    if not (request.user.is_staff and request.user.has_perm(f"routes.{action}_{model}")):
        raise ApiError(f"Only staff who may {action} {model}s in the admin do this.", status=403)


# --- route events -----------------------------------------------------------------------
def _event_out(event: RouteEvent) -> dict[str, Any]:
    return {"id": event.pk, "label": event.label, "method": event.method,
            "pattern": event.pattern, "created_at": event.created_at,
            "updated_at": event.updated_at}  # fmt: skip


def _event(request: HttpRequest, pk: int, action: str = "view") -> RouteEvent:
    _allowed(request, action, "routeevent")
    found = RouteEvent.objects.filter(pk=pk).first()
    if found is None:
        raise ApiError(f"No route event {pk}.", "id", status=404)
    return found


@router.get("/route-events", response={200: list[schemas.RouteEventOut], **ERRORS},
            summary="Route events (APIO's /webhooks/events)")  # fmt: skip
def list_route_events(request: HttpRequest):
    _allowed(request, "view", "routeevent")
    return [_event_out(e) for e in RouteEvent.objects.all()]


@router.post("/route-events", response={201: schemas.RouteEventOut, **ERRORS},
             summary="Define a route event", openapi_extra=bodies.doc(schemas.RouteEventIn))  # fmt: skip
def create_route_event(request: HttpRequest):
    _allowed(request, "add", "routeevent")
    given = bodies.validated(schemas.RouteEventIn, bodies.read(request))
    return Status(201, _event_out(_save_event(request, RouteEvent(), given.model_dump())))


@router.get("/route-events/{int:pk}", response={200: schemas.RouteEventOut, **ERRORS},
            summary="One route event")  # fmt: skip
def get_route_event(request: HttpRequest, pk: int):
    return _event_out(_event(request, pk))


@router.patch("/route-events/{int:pk}", response={200: schemas.RouteEventOut, **ERRORS},
              summary="Change a route event", openapi_extra=bodies.doc(schemas.RouteEventPatch))  # fmt: skip
def update_route_event(request: HttpRequest, pk: int):
    event = _event(request, pk, "change")
    return _event_out(_save_event(request, event, _given(request, schemas.RouteEventPatch)))


@router.delete("/route-events/{int:pk}", response={204: None, **ERRORS},
               summary="Delete a route event")  # fmt: skip
def delete_route_event(request: HttpRequest, pk: int):
    event = _event(request, pk, "delete")
    with audit.acting_as(request.user), transaction.atomic():
        event.delete()
    return HttpResponse(status=204)


def _save_event(request: HttpRequest, event: RouteEvent, given: dict[str, Any]) -> RouteEvent:
    """Through the admin's form (the pattern compiled and probed), audited."""
    data = {"label": event.label, "method": event.method, "pattern": event.pattern, **given}
    form = RouteEventForm(data, instance=event)
    if not form.is_valid():
        field, messages = next(iter(form.errors.items()))
        raise ApiError(f"{field}: {messages[0]}", field)
    with audit.acting_as(request.user), transaction.atomic():
        return form.save()


# --- route webhooks ---------------------------------------------------------------------
def _webhook_out(route: RouteWebhook) -> dict[str, Any]:
    hook = route.webhook
    return {"id": route.pk, "name": hook.name, "url": hook.url, "active": hook.active,
            "disabled": hook.is_disabled, "events": sorted(e.pk for e in route.events.all()),
            "signed": bool(hook.secret), "previous_secret_valid_until": hook.replaced_secret_until(),
            "headers": sorted(hook.headers or {}), "basic_auth_username": hook.basic_auth_username,
            "follow_redirects": hook.follow_redirects, "created_at": hook.created_at}  # fmt: skip


def _route(request: HttpRequest, pk: int, action: str = "view") -> RouteWebhook:
    _allowed(request, action, "routewebhook")
    found = RouteWebhook.objects.select_related("webhook").filter(pk=pk).first()
    if found is None:
        raise ApiError(f"No route webhook {pk}.", "id", status=404)
    return found


def _route_events(ids: list[int] | None) -> list[RouteEvent] | None:
    if ids is None:
        return None
    found = list(RouteEvent.objects.filter(pk__in=ids))
    missing = sorted(set(ids) - {e.pk for e in found})
    if missing:
        raise ApiError(f"events: no route event {missing[0]}.", "events")
    return found


def _save_route(request: HttpRequest, route: RouteWebhook | None, given: dict[str, Any]):
    events = _route_events(given.pop("events", None))
    secret = secret_change(given)
    try:
        plan = configure.prepare(route, {**given, "secret": secret})
    except ValidationError as exc:
        raise refused(exc) from None
    with audit.acting_as(request.user):
        return configure.store(route, plan, events, request.user)


@router.get("/route-webhooks", response={200: list[schemas.RouteWebhookOut], **ERRORS},
            summary="Route webhooks (APIO's /webhooks)")  # fmt: skip
def list_route_webhooks(request: HttpRequest):
    _allowed(request, "view", "routewebhook")
    routes = RouteWebhook.objects.select_related("webhook").prefetch_related("events")
    return [_webhook_out(r) for r in routes.order_by("pk")]


@router.post("/route-webhooks", response={201: schemas.RouteWebhookCreated, **ERRORS},
             summary="Create a route webhook", openapi_extra=bodies.doc(schemas.RouteWebhookIn))  # fmt: skip
def create_route_webhook(request: HttpRequest):
    _allowed(request, "add", "routewebhook")
    route, saved = _save_route(request, None, _given(request, schemas.RouteWebhookIn))
    return Status(201, {**_webhook_out(route), "secret": saved.new_secret or None})


@router.get("/route-webhooks/{int:pk}", response={200: schemas.RouteWebhookOut, **ERRORS},
            summary="One route webhook")  # fmt: skip
def get_route_webhook(request: HttpRequest, pk: int):
    return _webhook_out(_route(request, pk))


@router.patch("/route-webhooks/{int:pk}", response={200: schemas.RouteWebhookCreated, **ERRORS},
              summary="Change a route webhook", openapi_extra=bodies.doc(schemas.RouteWebhookPatch))  # fmt: skip
def update_route_webhook(request: HttpRequest, pk: int):
    given = _given(request, schemas.RouteWebhookPatch)
    route, saved = _save_route(request, _route(request, pk, "change"), given)
    return {**_webhook_out(route), "secret": saved.new_secret or None}


@router.delete("/route-webhooks/{int:pk}", response={204: None, **ERRORS},
               summary="Delete a route webhook")  # fmt: skip
def delete_route_webhook(request: HttpRequest, pk: int):
    route = _route(request, pk, "delete")
    with audit.acting_as(request.user), transaction.atomic():
        route.webhook.delete()  # the route side goes with it
    return HttpResponse(status=204)


@router.get("/route-webhooks/{int:pk}/history", response={200: list[schemas.DeliveryOut], **ERRORS},
            summary="Its deliveries, newest first (APIO's /{id}/history)")  # fmt: skip
def route_webhook_history(request: HttpRequest, pk: int):
    route = _route(request, pk)
    deliveries = (
        Delivery.objects.filter(webhook=route.webhook).select_related("event")
        .prefetch_related("attempt_set").order_by("-created_at")[:HISTORY]
    )  # fmt: skip
    return [delivery_out(d) for d in deliveries]


@router.post("/route-webhooks/{int:pk}/test", response={200: schemas.TestResult, **ERRORS},
             summary="Send a sample call now (APIO's /{id}/test)")  # fmt: skip
def test_route_webhook(request: HttpRequest, pk: int):
    attempt = configure.send_test(_route(request, pk, "change"))
    outcome = f"HTTP {attempt.response_status}" if attempt.response_status else attempt.error
    return {"ok": attempt.succeeded, "summary": f"{outcome} in {attempt.duration_ms:.0f} ms",
            "response_status": attempt.response_status,
            "response_body": attempt.response_body[:300]}  # fmt: skip

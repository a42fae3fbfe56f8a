"""POST /api/v1/events: outside producers emit declared event types, with the same rules
as hooks.emit and an Idempotency-Key so a retried post delivers once.

Whom an event may address: `user` only the token's own user, `namespace` only one the
token's user is a member of (owner or collaborator, as for submitting a job there: a
viewer of an internal namespace only looks, and its webhooks trust what arrives signed),
unless staff allowed the token to address anyone (ApiToken.may_address_anyone). An
unknown user or namespace and one the token may not address get the same answer, byte
for byte, so the answers tell no one who or what exists."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from ninja import Router

import hooks
from accounts.events import user_webhooks_enabled
from accounts.models import ApiToken
from api import idempotency, ratelimit
from api.schemas import EventIn, EventOut
from apikit import bodies
from apikit.errors import ApiError, documented
from namespaces.access import member_namespace
from namespaces.models import Namespace

router = Router(tags=["events"])

KEY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": idempotency.MAX_LENGTH},
    "description": "The same key (with the same body) within 24 h returns the first answer "
    "and writes nothing.",
}


@router.post(
    "/events",
    response={202: EventOut, **documented(400, 401, 403, 413, 422, 429)},
    summary="Post an event",
    openapi_extra=bodies.doc(EventIn, parameters=[KEY_HEADER]),
)
def post_event(request: HttpRequest):
    """Emit a declared event type to every webhook subscribed to it (server webhooks, and
    the given user's or namespace's). Needs a token with the "may post events" scope."""
    token = request.auth
    if not token.can_post_events:
        raise ApiError(
            "This token may not post events; staff give that scope in the admin (API tokens).",
            status=403,
        )
    _within_rate(token)
    key = request.headers.get("Idempotency-Key")
    try:
        if key is not None:
            idempotency.check(key)
        body = bodies.read(request)
        status, answer, replayed = idempotency.once(
            token.user, key, request.body, lambda: _emit(body, token)
        )
    except idempotency.IdempotencyError as exc:
        raise ApiError(exc.message, status=exc.status) from None
    response = JsonResponse(answer, status=status)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _within_rate(token: ApiToken) -> None:
    """Refuse a post over the token's rate (INGEST_RATE_LIMIT a minute), before anything
    is read or written."""
    wait = ratelimit.wait_for(token.pk)
    if wait is not None:
        raise ApiError(
            f"Too many events: this token may post {settings.INGEST_RATE_LIMIT} a minute; "
            f"try again in {wait} s.", status=429, headers={"Retry-After": str(wait)},
        )  # fmt: skip


def _audience() -> tuple[str, ...]:
    """Who an event may reach: a user's own webhook only while user webhooks are on (the
    admin's switch, ENABLE_USER_WEBHOOKS), as for the hub's own notifications."""
    if user_webhooks_enabled():
        return hooks.SCOPES
    return tuple(scope for scope in hooks.SCOPES if scope != hooks.USER)


def _emit(body: dict, token: ApiToken) -> tuple[int, dict]:
    event_in = bodies.validated(EventIn, body)
    if not hooks.is_declared_event_type(event_in.type):
        raise ApiError(
            f"Unknown event type {event_in.type!r}: staff declare the types producers may post "
            "in the admin (Declared event types).", "type",
        )  # fmt: skip
    try:
        event = hooks.emit(
            event_in.type,
            event_in.payload,
            user=_user(event_in.user, token),
            namespace=_namespace(event_in.namespace, token),
            audience=_audience(),
            limit=hooks.settings().max_payload_bytes,  # an outside producer's limit
        )
    except hooks.PayloadTooLarge as exc:
        raise ApiError(str(exc), "payload", status=413) from None
    except TypeError as exc:
        raise ApiError(str(exc), "payload") from None
    answer = EventOut(
        id=event.id, type=event.type, created_at=event.created_at,
        deliveries=event.deliveries.count(),
    )  # fmt: skip
    return 202, answer.model_dump(mode="json")


# One answer each for "no such" and "not yours": neither echoes the value given.
NOT_YOUR_USER = (
    "user: this token may address only its own user (by id, email or user name); staff "
    "may allow a token to address anyone in the admin (API tokens)."
)
NOT_YOUR_NAMESPACE = (
    "namespace: this token may address only a namespace its user owns or collaborates in; "
    "staff may allow a token to address anyone in the admin (API tokens)."
)


def _user(value: int | str | None, token: ApiToken):
    if value is None:
        return None
    if not token.may_address_anyone:
        if _names(token.user, value):
            return token.user
        raise ApiError(NOT_YOUR_USER, "user")
    users = get_user_model().objects.filter(is_active=True)
    if isinstance(value, int):
        found = users.filter(pk=value).first()
    else:
        found = users.filter(Q(email__iexact=value) | Q(username=value)).first()
    if found is None:
        raise ApiError(NOT_YOUR_USER, "user")
    return found


def _names(user, value: int | str) -> bool:
    """Whether `value` (an id, an email in any case, or a user name) is `user`."""
    if isinstance(value, int):
        return value == user.pk
    return value == user.username or bool(user.email) and value.lower() == user.email.lower()


def _namespace(path: str | None, token: ApiToken):
    if path is None:
        return None
    if token.may_address_anyone:
        found = Namespace.objects.filter(path=path).first()
    else:
        found = member_namespace(token.user, path)
    if found is None:
        raise ApiError(NOT_YOUR_NAMESPACE, "namespace")
    return found.key

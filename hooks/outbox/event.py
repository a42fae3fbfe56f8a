"""`emit()`: the transactional outbox. An event and its deliveries are written in the
caller's transaction; the broker only hears about them once it commits."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db import transaction
from django.utils import timezone

from hooks import catalog, conf, ssrf
from hooks.models import Delivery, Event, Webhook
from hooks.outbox import fanout
from hooks.outbox.handover import ENQUEUE_GRACE, enqueue_on_commit
from hooks.outgoing.body import encode_json


class PayloadTooLarge(ValueError):
    pass


def validate(
    event_type: str, payload: dict, target_url: str | None
) -> tuple[catalog.EventType, conf.HookSettings]:
    """Everything about an event that can be refused, checked before anything is written:
    UnknownEventType, TypeError / PayloadTooLarge, or ssrf.UnsafeURL. A `target_url`
    (a job's callback) is a URL a user supplied: a loopback, private or metadata
    address written as such is refused now, not retried at send time."""
    spec = catalog.get(event_type)
    settings = conf.settings()
    _check_payload(payload, settings)
    if target_url:
        ssrf.check_target(target_url, settings.user_allowed_networks)
    return spec, settings


def _check_payload(payload: dict, settings: conf.HookSettings) -> None:
    if not isinstance(payload, dict):
        raise TypeError("An event payload is a JSON object (a dict).")
    try:
        size = len(encode_json(payload))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The event payload is not JSON-serialisable: {exc}") from None
    if size > settings.max_payload_bytes:
        raise PayloadTooLarge(
            f"The event payload is {size} bytes; the limit is {settings.max_payload_bytes}."
        )


def namespace_key(namespace: Any) -> str:
    if namespace is None or namespace == "":
        return ""
    return str(getattr(namespace, "pk", namespace))


def user_id(user) -> Any:
    return getattr(user, "pk", user)


def emit(
    event_type: str,
    payload: dict,
    *,
    user=None,
    namespace: Any = None,
    target_url: str | None = None,
    target_signer: Webhook | None = None,
    target_schedule: tuple[float, ...] | None = None,
    audience: tuple[str, ...] | None = None,
    webhooks: Collection[int] | None = None,
) -> Event:
    """Record an event and a delivery per subscriber, in the caller's transaction; they
    go to the worker when it commits (a rolled-back transaction sends nothing).

    `user` and `namespace` scope the event (their webhooks receive it as well as
    the server's); `audience` limits it to webhooks of those scopes (e.g. ("user",));
    `webhooks` (ids) limits it further to those webhooks (an app's own subscriptions,
    e.g. route webhooks and their route events);
    `target_url` adds one delivery to that URL (a per-job callback), signed with
    `target_signer`'s secrets when given (read at each attempt, never copied) and
    retried on `target_schedule` (seconds before each attempt) instead of the hub's
    schedule.
    Raises UnknownEventType, TypeError / PayloadTooLarge or ssrf.UnsafeURL — and then
    writes nothing.
    """
    spec, settings = validate(event_type, payload, target_url)
    now = timezone.now()
    namespace = namespace_key(namespace)
    attempts = len(settings.retry_schedule)
    # Everything that can fail on bad input was checked above, so no savepoint is
    # needed: a database error here breaks the caller's transaction as it should.
    with transaction.atomic(savepoint=False):
        event = Event(
            type=event_type, payload=payload, user=user, namespace=namespace, created_at=now
        )
        where = fanout.condition(spec, user_id(user), namespace, audience, webhooks)
        pending = fanout.write(event, where, attempts, now, now + ENQUEUE_GRACE)
        if target_url:
            schedule = list(target_schedule) if target_schedule else None
            callback = Delivery.objects.create(
                event=event,
                target_url=target_url,
                signed_by=target_signer,
                retry_schedule=schedule,
                max_attempts=len(schedule) if schedule else attempts,
                next_attempt_at=now,
                enqueued_until=now + ENQUEUE_GRACE,
                created_at=now,
            )
            pending.append(callback.pk)
        if pending:
            enqueue_on_commit(pending)
    return event

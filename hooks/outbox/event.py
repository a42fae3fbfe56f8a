"""`emit()`: the transactional outbox. An event and its deliveries are written in the
caller's transaction; the broker only hears about them once it commits."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from hooks import catalog, conf, largevalues, ssrf
from hooks.largevalues import Part
from hooks.models import Delivery, Event, EventValue, LargeValue, Webhook
from hooks.outbox import fanout, subjects
from hooks.outbox.handover import ENQUEUE_GRACE, enqueue_on_commit

# A value stored apart is shared by the events of the next hour that carry it (a job's
# retries); the prune deletes unshared values only when they are older than that, so
# it never deletes one an event is being linked to.
SHARED_FOR = timedelta(hours=1)


class PayloadTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Checked:
    """An event that passed `validate`: its type, the settings, and its payload as the
    row keeps it with the parts that go apart (hooks.largevalues)."""

    spec: catalog.EventType
    settings: conf.HookSettings
    kept: dict
    parts: list[Part]
    subject: str | None = None


def validate(
    event_type: str,
    payload: dict,
    target_url: str | None,
    limit: int | None = None,
    subject: str | None = None,
) -> Checked:
    """Everything about an event that can be refused, checked before anything is written:
    UnknownEventType, TypeError / PayloadTooLarge (over `limit` bytes, by default
    WEBHOOK_MAX_EVENT_BYTES), TypeError / ValueError for a malformed `subject`
    (hooks.outbox.subjects), or ssrf.UnsafeURL. A `target_url` (a job's callback) is a
    URL a user supplied: a loopback, private or metadata address written as such is
    refused now, not retried at send time."""
    spec = catalog.get(event_type)
    settings = conf.settings()
    kept, parts = _check_payload(payload, settings, limit)
    subject = subjects.check(subject)
    if target_url:
        ssrf.check_target(target_url, settings.user_allowed_networks)
    return Checked(spec, settings, kept, parts, subject)


def _check_payload(
    payload: dict, settings: conf.HookSettings, limit: int | None
) -> tuple[dict, list[Part]]:
    """The payload as the row keeps it and the parts that go apart, or TypeError /
    PayloadTooLarge (over `limit`, by default WEBHOOK_MAX_EVENT_BYTES, as a receiver
    would get it)."""
    if not isinstance(payload, dict):
        raise TypeError("An event payload is a JSON object (a dict).")
    try:
        size = largevalues.payload_size(payload)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The event payload is not JSON-serialisable: {exc}") from None
    limit = settings.max_event_bytes if limit is None else limit
    if size > limit:
        raise PayloadTooLarge(f"The event payload is {size} bytes; the limit is {limit}.")
    return largevalues.split(payload, settings.max_payload_bytes, size)


def new_event(
    checked: Checked,
    event_type: str,
    user,
    namespace: str,
    now: datetime,
    sequence: int | None = None,
) -> Event:
    """The Event row to write: the payload as the row keeps it."""
    return Event(
        type=event_type, payload=checked.kept, user=user, namespace=namespace, created_at=now,
        stored_apart=len(checked.parts) or None, subject=checked.subject, sequence=sequence,
    )  # fmt: skip


def store_apart(event: Event, parts: list[Part], now: datetime) -> None:
    """The event's large values, each stored once (one already stored by an event of the
    last SHARED_FOR is shared), and where each goes in its payload; kept on `event` too
    (`apart_values`), for a send in this process."""
    event.apart_values = [(part.path, part.data) for part in parts]
    if not parts:
        return
    data = {part.digest: part.data for part in parts}
    known = LargeValue.objects.filter(digest__in=list(data), created_at__gte=now - SHARED_FOR)
    ids = dict(known.values_list("digest", "pk"))
    new = [LargeValue(digest=d, data=v, size=len(v), created_at=now)
           for d, v in data.items() if d not in ids]  # fmt: skip
    for value in LargeValue.objects.bulk_create(new):
        ids[value.digest] = value.pk
    EventValue.objects.bulk_create(
        EventValue(event=event, value_id=ids[part.digest], path=list(part.path)) for part in parts
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
    target_success_status: int | None = None,
    audience: tuple[str, ...] | None = None,
    webhooks: Collection[int] | None = None,
    not_to: int | None = None,
    limit: int | None = None,
    subject: str | None = None,
) -> Event:
    """Record an event and a delivery per subscriber, in the caller's transaction; they
    go to the worker when it commits (a rolled-back transaction sends nothing).

    `user` and `namespace` scope the event (their webhooks receive it as well as
    the server's); `audience` limits it to webhooks of those scopes (e.g. ("user",));
    `webhooks` (ids) limits it further to those webhooks (an app's own subscriptions,
    e.g. route webhooks and their route events); `not_to` (an id) never receives it
    (an operator event about that webhook);
    `target_url` adds one delivery to that URL (a per-job callback), signed with
    `target_signer`'s secrets when given (read at each attempt, never copied) and
    retried on `target_schedule` (seconds before each attempt) instead of the hub's
    schedule; with `target_success_status` it succeeds on that HTTP status alone (200:
    RunPod's rule for its callbacks) rather than on any 2xx.
    `subject` says what the event is about ("job:42"; visible ASCII, at most 200
    characters): the event gets the subject's next sequence number, both go out as
    headers, and a webhook that keeps order per subject (`Webhook.ordered`) receives
    that subject's events one at a time, in that order (hooks.worker.order).
    A payload over WEBHOOK_MAX_PAYLOAD_BYTES keeps its large values apart from the
    event's row (hooks.largevalues): each stored once, however many events of the
    transaction carry it, and put back in its place when a delivery is sent.
    Raises UnknownEventType, TypeError / PayloadTooLarge (over `limit` bytes of JSON,
    by default WEBHOOK_MAX_EVENT_BYTES; an outside producer's: WEBHOOK_MAX_PAYLOAD_BYTES),
    TypeError / ValueError (a malformed subject) or ssrf.UnsafeURL — and then writes
    nothing.
    """
    checked = validate(event_type, payload, target_url, limit, subject)
    settings = checked.settings
    now = timezone.now()
    namespace = namespace_key(namespace)
    attempts = len(settings.retry_schedule)
    # Everything that can fail on bad input was checked above, so no savepoint is
    # needed: a database error here breaks the caller's transaction as it should.
    with transaction.atomic(savepoint=False):
        sequence = subjects.next_sequence(checked.subject) if checked.subject else None
        event = new_event(checked, event_type, user, namespace, now, sequence)
        where = fanout.condition(checked.spec, user_id(user), namespace, audience, webhooks, not_to)
        pending = fanout.write(event, where, attempts, now, now + ENQUEUE_GRACE, payload)
        store_apart(event, checked.parts, now)
        if target_url:
            schedule = list(target_schedule) if target_schedule else None
            callback = Delivery.objects.create(
                event=event,
                target_url=target_url,
                signed_by=target_signer,
                retry_schedule=schedule,
                success_status=target_success_status,
                max_attempts=len(schedule) if schedule else attempts,
                next_attempt_at=now,
                enqueued_until=now + ENQUEUE_GRACE,
                created_at=now,
            )
            pending.append(callback.pk)
        if pending:
            enqueue_on_commit(pending)
    return event

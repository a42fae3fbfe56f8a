"""`emit()`: the transactional outbox. An event and its deliveries are written in the
caller's transaction; the broker only hears about them once it commits."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from hooks import catalog, conf, delivery, fanout, signing, ssrf
from hooks.models import Attempt, Delivery, Event, Webhook

log = logging.getLogger("hooks.outbox")

# The broker has this long to start a delivery before the sweeper enqueues it again.
ENQUEUE_GRACE = timedelta(seconds=60)
TASK = "hooks.tasks.deliver"
MAX_TASKS_PER_ENQUEUE = 4


class PayloadTooLarge(ValueError):
    pass


def _namespace_key(namespace: Any) -> str:
    if namespace is None or namespace == "":
        return ""
    return str(getattr(namespace, "pk", namespace))


def _validated(
    event_type: str, payload: dict, target_url: str | None
) -> tuple[catalog.EventType, conf.HookSettings]:
    """Everything about an event that can be refused, checked before anything is written."""
    spec = catalog.get(event_type)
    settings = conf.get()
    _check_payload(payload, settings)
    if target_url:
        ssrf.parse(target_url)
    return spec, settings


def _check_payload(payload: dict, settings: conf.HookSettings) -> None:
    if not isinstance(payload, dict):
        raise TypeError("An event payload is a JSON object (a dict).")
    try:
        size = len(delivery.encode_json(payload))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The event payload is not JSON-serialisable: {exc}") from None
    if size > settings.max_payload_bytes:
        raise PayloadTooLarge(
            f"The event payload is {size} bytes; the limit is {settings.max_payload_bytes}."
        )


_slots_synced = False


def _sync_slots_once() -> None:
    """Slots fed by environment variables are brought in line once per process."""
    global _slots_synced
    if not _slots_synced:
        from hooks import slots

        slots.sync_all_env()
        _slots_synced = True


def forget_slots() -> None:
    """Sync env-fed slots again at the next emit (tests change the environment)."""
    global _slots_synced
    _slots_synced = False


def _user_id(user) -> Any:
    return getattr(user, "pk", user)


def enqueue(ids: list) -> None:
    """Hand deliveries to the broker: a pump task per batch, at most a few per call.

    Pumps keep claiming whatever is due, so the ids beyond the first batches need no
    task of their own; a lost task is made good by the sweeper.
    """
    size = conf.get().batch_size
    for start in range(0, min(len(ids), size * MAX_TASKS_PER_ENQUEUE), size):
        _async(TASK, [str(i) for i in ids[start : start + size]])


def enqueue_pump() -> None:
    """One more pump with no ids of its own: it claims whatever is due."""
    _async(TASK, [])


_brokers: dict[int, object] = {}


def _broker():
    """One broker client per process (and per fork): django-q2 otherwise builds a new
    one, with a new Redis connection, for every task it enqueues."""
    import os

    from django_q.brokers import get_broker

    pid = os.getpid()
    if pid not in _brokers:
        _brokers.clear()
        _brokers[pid] = get_broker()
    return _brokers[pid]


def _async(task: str, ids: list) -> None:
    from django_q.tasks import async_task

    async_task(task, ids, task_name="hooks.deliver", broker=_broker())


class _Pending:
    """Delivery ids written in one transaction, enqueued together when it commits."""

    def __init__(self) -> None:
        self.ids: list = []

    def __call__(self) -> None:
        ids, self.ids = self.ids, []
        enqueue(ids)


_local = threading.local()


def enqueue_on_commit(ids: list) -> None:
    """Enqueue after the current transaction commits, one hand-over per transaction
    however many events it emits (a rolled-back one enqueues nothing)."""
    connection = transaction.get_connection()
    pending = getattr(_local, "pending", None)
    registered = pending is not None and any(
        entry[1] is pending for entry in connection.run_on_commit
    )
    if not registered:
        pending = _local.pending = _Pending()
        transaction.on_commit(pending, robust=True)
    pending.ids.extend(ids)


def emit(
    event_type: str,
    payload: dict,
    *,
    user=None,
    namespace: Any = None,
    target_url: str | None = None,
    target_secret: str = "",
    target_schedule: tuple[float, ...] | None = None,
    audience: tuple[str, ...] | None = None,
) -> Event:
    """Record an event and a delivery per subscriber, in the caller's transaction.

    `user` and `namespace` scope the event (their webhooks receive it as well as
    the server's); `audience` limits it to webhooks of those scopes (e.g. ("user",));
    `target_url` adds one delivery to that URL (a per-job callback), signed with
    `target_secret` when given and retried on `target_schedule` (seconds before each
    attempt) instead of the hub's schedule.
    Raises UnknownEventType, TypeError / PayloadTooLarge, or ssrf.UnsafeURL — and
    then writes nothing.
    """
    spec, settings = _validated(event_type, payload, target_url)
    if target_secret:
        signing.secret_key(target_secret)  # ValueError for a malformed secret
    _sync_slots_once()
    now = timezone.now()
    namespace_key = _namespace_key(namespace)
    attempts = len(settings.retry_schedule)
    # Everything that can fail on bad input was checked above, so no savepoint is
    # needed: a database error here breaks the caller's transaction as it should.
    with transaction.atomic(savepoint=False):
        event = Event(
            type=event_type, payload=payload, user=user, namespace=namespace_key, created_at=now
        )
        where = fanout.condition(spec, _user_id(user), namespace_key, audience)
        pending = fanout.write(event, where, attempts, now, now + ENQUEUE_GRACE)
        if target_url:
            schedule = list(target_schedule) if target_schedule else None
            callback = Delivery.objects.create(
                event=event,
                target_url=target_url,
                target_secret=target_secret,
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


def send_now(
    event_type: str,
    payload: dict,
    *,
    webhooks: list[Webhook] | None = None,
    user=None,
    namespace: Any = None,
    target_url: str | None = None,
) -> list[Attempt]:
    """Deliver an event synchronously, once, and return the recorded attempts.

    For blocking hooks (queue start/end, shutdown): the caller waits for the
    receivers. `webhooks` limits the delivery to those webhooks (default: every
    subscriber). Same transport, signing and records as `emit`; no retries.
    Call it outside a transaction: its records must outlive the caller's rollback.
    """
    if connection.in_atomic_block:
        log.warning(
            "send_now(%s) called inside a transaction; its records may roll back.", event_type
        )
    spec, settings = _validated(event_type, payload, target_url)
    now = timezone.now()
    token = uuid.uuid4()
    namespace_key = _namespace_key(namespace)
    if webhooks is None:
        webhooks = fanout.subscribers(spec, _user_id(user), namespace_key)
    lease = now + timedelta(seconds=settings.claim_lease)
    claimed = dict(
        status=Delivery.Status.PENDING,
        attempts=1,
        max_attempts=1,
        next_attempt_at=now,
        claim_token=token,
        claimed_until=lease,
        created_at=now,
    )
    with transaction.atomic():
        event = Event.objects.create(
            type=event_type, payload=payload, user=user, namespace=namespace_key, created_at=now
        )
        rows = [Delivery(event=event, webhook=w, **claimed) for w in webhooks]
        if target_url:
            rows.append(Delivery(event=event, target_url=target_url, **claimed))
        Delivery.objects.bulk_create(rows)
    return delivery.run(token, rows)

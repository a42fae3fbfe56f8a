"""Synchronous delivery, for blocking server hooks (queue start/end, shutdown) and test
pings: the worker's path (`attempt.deliver`), run in the caller's process, once, with
the same records as any delivery and no retries."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from hooks import conf, slots
from hooks.models import Attempt, Delivery, Webhook
from hooks.outbox import fanout
from hooks.outbox.event import namespace_key, new_event, store_apart, user_id, validate
from hooks.worker.attempt import deliver

log = logging.getLogger("hooks.send_now")


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
    checked = validate(event_type, payload, target_url)
    now = timezone.now()
    token = uuid.uuid4()
    namespace = namespace_key(namespace)
    if webhooks is None:
        webhooks = fanout.subscribers(checked.spec, user_id(user), namespace)
    lease = now + timedelta(seconds=checked.settings.sync_lease)
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
        event = new_event(checked, event_type, user, namespace, now)
        event.save(force_insert=True)
        store_apart(event, checked.parts, now)
        rows = [Delivery(event=event, webhook=w, **claimed) for w in webhooks]
        if target_url:
            rows.append(Delivery(event=event, target_url=target_url, **claimed))
        Delivery.objects.bulk_create(rows)
    return deliver(token, rows)


def send_to_slot(name: str, payload: dict | None = None, timeout: float | None = None):
    """Send a named server hook synchronously, if its slot is set (the attempt, or None).

    The wait is the slot webhook's own timeout, else the slot's default, else
    WEBHOOK_TIMEOUT; `timeout` caps it for this send. The payload defaults to
    `{"event": "<action>"}`.
    """
    slot = slots.get(name)
    slots.sync_env(name)
    hook = slots.webhook(name)
    if hook is None or not hook.active or not hook.url:
        return None
    hook.timeout = hook.timeout or slot.timeout or conf.settings().timeout
    if timeout is not None:
        hook.timeout = min(hook.timeout, timeout)
    action = slot.event_type.split(".", 1)[1]
    attempts = send_now(slot.event_type, payload or {"event": action}, webhooks=[hook])
    return attempts[0] if attempts else None

"""django-q2 glue: the tasks the cluster runs. The work itself lives elsewhere."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from hooks import claims, conf, delivery, outbox
from hooks.models import Delivery
from hooks.pump import Pump

log = logging.getLogger("hooks.tasks")
Status = Delivery.Status
TICK = 1.0


def deliver(ids: list[str]) -> int:
    """The pump task: send these deliveries (those still due and unclaimed), then keep
    claiming whatever else is due until nothing is left or its time is up."""
    return Pump().drain(ids or None)


def deliver_due(limit: int | None = None) -> int:
    """Claim and send whatever is due now, in this process (used by tests and tools)."""
    settings = conf.get()
    token, batch = claims.claim(None, limit or settings.batch_size, settings.claim_lease)
    return len(delivery.run(token, batch))


def skip_unsendable(now=None) -> int:
    """Pending deliveries of disabled or inactive webhooks become skipped (kept for replay)."""
    now = now or timezone.now()
    return (
        Delivery.objects.filter(status=Status.PENDING, manual=False)
        .filter(Q(webhook__disabled_at__isnull=False) | Q(webhook__active=False))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(status=Status.SKIPPED, next_attempt_at=None, completed_at=now)
    )


def fail_abandoned(now=None) -> int:
    """Deliveries whose last permitted attempt was cut short (worker died) are failed."""
    now = now or timezone.now()
    from django.db.models import F

    return Delivery.objects.filter(
        status=Status.PENDING, claimed_until__lt=now, attempts__gte=F("max_attempts")
    ).update(
        status=Status.FAILED,
        claimed_until=None,
        claim_token=None,
        completed_at=now,
        last_error="The worker stopped during the last attempt; its outcome is unknown.",
    )


def enqueue_due(now=None, limit: int = 1000) -> int:
    """Hand due deliveries that no broker task holds to the broker again."""
    now = now or timezone.now()
    unqueued = Q(enqueued_until__isnull=True) | Q(enqueued_until__lt=now)
    ids = list(
        claims.due(now)
        .filter(unqueued)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0
    claims.due(now).filter(unqueued, pk__in=ids).update(enqueued_until=now + outbox.ENQUEUE_GRACE)
    outbox.enqueue(ids)
    return len(ids)


def sweep_once(now=None) -> int:
    now = now or timezone.now()
    skip_unsendable(now)
    fail_abandoned(now)
    return enqueue_due(now)


def sweep() -> int:
    """Scheduled every minute. Keeps ticking while retries fall due within the minute,
    so a 5-second retry is not held back to the next schedule run; an idle hub
    returns at once (a long-running task would delay a cluster's shutdown)."""
    settings = conf.get()
    started = time.monotonic()
    total = sweep_once()
    while time.monotonic() - started < settings.sweep_seconds:
        horizon = timezone.now() + timedelta(seconds=settings.sweep_seconds)
        if not Delivery.objects.filter(
            status=Status.PENDING, next_attempt_at__lte=horizon
        ).exists():
            break
        time.sleep(TICK)
        total += sweep_once()
    return total

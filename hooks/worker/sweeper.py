"""The safety net, run every minute: deliveries of stopped webhooks are kept as skipped,
deliveries whose last attempt died with its worker are failed, and due deliveries that
no broker task holds are handed to the broker again. The Delivery table, not the
broker, is the source of truth."""

from __future__ import annotations

import time
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from hooks import conf
from hooks.models import Delivery
from hooks.outbox.handover import ENQUEUE_GRACE, enqueue
from hooks.worker import claims

Status = Delivery.Status
TICK = 1.0


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
    claims.due(now).filter(unqueued, pk__in=ids).update(enqueued_until=now + ENQUEUE_GRACE)
    enqueue(ids)
    return len(ids)


def sweep_once(now=None) -> int:
    now = now or timezone.now()
    skip_unsendable(now)
    fail_abandoned(now)
    return enqueue_due(now)


def sweep() -> int:
    """Keeps ticking while retries fall due within the minute, so a 5-second retry is
    not held back to the next schedule run; an idle hub returns at once (a
    long-running task would delay a cluster's shutdown)."""
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

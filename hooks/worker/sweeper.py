"""The safety net, run every minute: deliveries of stopped webhooks are kept as skipped,
deliveries whose last attempt died with its worker are failed, held deliveries whose
chain has nothing before them go (hooks.worker.order), and due deliveries that
no broker task holds are handed to the broker again (that last part also every second,
by the cluster's ticker). The Delivery table, not the broker, is the source of truth."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from hooks.models import Delivery
from hooks.outbox.handover import ENQUEUE_GRACE, hand_over
from hooks.worker import claims, order, pacing

Status = Delivery.Status


def skip_unsendable(now=None) -> int:
    """Pending and held deliveries of disabled or inactive webhooks become skipped (kept
    for replay)."""
    now = now or timezone.now()
    return (
        Delivery.objects.filter(status__in=[Status.PENDING, Status.HELD], manual=False)
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
    """Hand due deliveries that no broker task holds to the broker again. If the broker
    refuses them, they are marked unqueued again, so the next look hands them over
    (rather than waiting out ENQUEUE_GRACE)."""
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
    claims.due(now, by_ids=True).filter(unqueued, pk__in=ids).update(
        enqueued_until=now + ENQUEUE_GRACE
    )
    hand_over(ids)
    return len(ids)


def next_due(now) -> datetime | None:
    """When the earliest pending delivery that is not due yet becomes due (one indexed
    look at (status, next_attempt_at)), so the ticker can wake exactly then."""
    return (
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__gt=now)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def sweep_once(now=None) -> int:
    now = now or timezone.now()
    skip_unsendable(now)
    fail_abandoned(now)
    pacing.wake_due(now)  # pumps owed to paced webhooks, should no ticker run
    order.release_stuck()
    return enqueue_due(now)


def sweep() -> int:
    """Scheduled every minute (one pass): the cluster's ticker (hooks.worker.ticker)
    hands due deliveries over every second; this is the safety net behind it."""
    return sweep_once()

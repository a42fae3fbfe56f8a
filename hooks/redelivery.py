"""Redelivery: a new attempt on the same delivery, with the same `webhook-id`."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from hooks import outbox
from hooks.models import Delivery

Status = Delivery.Status


def request(deliveries: QuerySet[Delivery]) -> int:
    """Queue one manual attempt for each delivery (call inside a transaction).

    A finished delivery gets exactly one more attempt (its final state is decided
    by it); a pending one is simply tried now and keeps its retry schedule.
    Deliveries a worker is sending right now are left alone.
    """
    now = timezone.now()
    grace = now + outbox.ENQUEUE_GRACE
    idle = deliveries.filter(claim_token__isnull=True)
    finished = list(idle.exclude(status=Status.PENDING).values_list("pk", flat=True))
    pending = list(idle.filter(status=Status.PENDING).values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=finished).update(
        status=Status.PENDING,
        manual=True,
        max_attempts=F("attempts") + 1,
        next_attempt_at=now,
        enqueued_until=grace,
        completed_at=None,
    )
    Delivery.objects.filter(pk__in=pending).update(
        manual=True, next_attempt_at=now, enqueued_until=grace
    )
    ids = finished + pending
    if ids:
        transaction.on_commit(partial(outbox.enqueue, ids), robust=True)
    return len(ids)

"""Redelivery: a new attempt on the same delivery, with the same `webhook-id`."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from hooks.models import Delivery, Event, Webhook
from hooks.outbox.handover import ENQUEUE_GRACE, enqueue_on_commit
from hooks.tools import rollup
from hooks.worker import order, sweeper

Status = Delivery.Status


@transaction.atomic  # the events' locks below are held until it commits
def redeliver(deliveries: QuerySet[Delivery]) -> int:
    """Queue one manual attempt for each delivery (in the caller's transaction, if any).

    A finished delivery gets exactly one more attempt (its final state is decided
    by it); a pending one is simply tried now and keeps its retry schedule, and so is
    a held one (sent now, ahead of its subject's earlier events: the person asked).
    Deliveries a worker is sending right now are left alone, and so are those whose
    bodies expired (WEBHOOK_BODY_RETENTION_DAYS): nothing is left to send. Their events
    are locked first, so the body prune (hooks.tools.retention) cannot empty one this
    makes pending again.
    """
    now = timezone.now()
    grace = now + ENQUEUE_GRACE
    idle = deliveries.filter(claim_token__isnull=True)
    kept = Event.objects.select_for_update().filter(
        pk__in=idle.values("event_id"), body_expired_at__isnull=True
    )
    idle = idle.filter(event_id__in=list(kept.values_list("pk", flat=True)))
    waiting = [Status.PENDING, Status.HELD]
    finished = list(idle.exclude(status__in=waiting).values_list("pk", "webhook_id"))
    pending = list(idle.filter(status__in=waiting).values_list("pk", flat=True))
    rollup.invalidate(webhook for _, webhook in finished)  # their hours count them as finished
    finished = [pk for pk, _ in finished]
    Delivery.objects.filter(pk__in=finished).update(
        status=Status.PENDING,
        manual=True,
        max_attempts=F("attempts") + 1,
        next_attempt_at=now,
        enqueued_until=grace,
        completed_at=None,
    )
    Delivery.objects.filter(pk__in=pending).update(
        status=Status.PENDING, manual=True, next_attempt_at=now, enqueued_until=grace
    )
    ids = finished + pending
    if ids:
        enqueue_on_commit(ids)
    return len(ids)


def body_expired(delivery: Delivery) -> str:
    """Why this delivery cannot be sent again, or "": its body expired."""
    expired = delivery.event.body_expired_at
    if expired is None:
        return ""
    return (
        f"Its body expired on {expired:%Y-%m-%d %H:%M} UTC (WEBHOOK_BODY_RETENTION_DAYS): "
        "it cannot be sent again."
    )


def expired_among(deliveries: QuerySet[Delivery]) -> int:
    """How many of these deliveries' bodies expired (a redelivery leaves them out)."""
    return deliveries.filter(event__body_expired_at__isnull=False).count()


def stop_retrying(deliveries: QuerySet[Delivery], reason: str = "Stopped by its owner.") -> int:
    """End each pending or held delivery as failed, with no further attempt (its history
    stays, and it can be redelivered later); a held delivery of an ordered webhook that
    waited for one of them goes next. One a worker is sending right now is left alone."""
    stopping = deliveries.filter(status__in=[Status.PENDING, Status.HELD], claim_token__isnull=True)
    with transaction.atomic():
        rollup.invalidate(stopping.values_list("webhook_id", flat=True).distinct())
        chains = order.chains_of(stopping)
        stopped = stopping.update(
            status=Status.FAILED, next_attempt_at=None, enqueued_until=None,
            completed_at=timezone.now(), last_error=reason, manual=False,
        )  # fmt: skip
        if chains:
            order.release(chains)
            transaction.on_commit(_hand_over_due)
        return stopped


def _hand_over_due() -> None:
    """Released deliveries go to the broker now rather than at the ticker's next look."""
    sweeper.enqueue_due()


REPLAYABLE = (Status.FAILED, Status.SKIPPED)


def select(
    *,
    webhook: Webhook | None = None,
    statuses: tuple[str, ...] | list[str] = REPLAYABLE,
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
) -> QuerySet[Delivery]:
    """Deliveries to replay: by webhook, final status, creation time range and event type."""
    deliveries = Delivery.objects.filter(status__in=list(statuses))
    if webhook is not None:
        deliveries = deliveries.filter(webhook=webhook)
    if since is not None:
        deliveries = deliveries.filter(created_at__gte=since)
    if until is not None:
        deliveries = deliveries.filter(created_at__lt=until)
    if event_type:
        deliveries = deliveries.filter(event__type=event_type)
    return deliveries.order_by("created_at")


def redeliver_in_batches(deliveries: QuerySet[Delivery], batch: int = 500, progress=None) -> int:
    """Queue a large selection for redelivery a batch per transaction (short locks)."""
    ids = list(deliveries.values_list("pk", flat=True))
    done = 0
    for start in range(0, len(ids), batch):
        with transaction.atomic():
            done += redeliver(Delivery.objects.filter(pk__in=ids[start : start + batch]))
        if progress:
            progress(min(start + batch, len(ids)), len(ids))
    return done


def replay(
    webhook: Webhook, *, since=None, until=None, statuses=REPLAYABLE, event_type=None
) -> int:
    """Send a webhook's failed and skipped deliveries of a period again, in batches."""
    selection = select(
        webhook=webhook, statuses=statuses, since=since, until=until, event_type=event_type
    )
    return redeliver_in_batches(selection)

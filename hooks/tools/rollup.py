"""A webhook's finished deliveries counted per hour, once: a week's success rate
(`webhooks status`) then reads at most 168 small rows instead of every delivery of the
week, however many there were. The hub's deliveries are counted per hour the same way,
for the dashboard (`hub_hours`: every delivery, of a webhook or none; an hour settles
once no delivery of it is pending; any invalidation voids them all).

An hour is counted when it has settled: it ended SETTLE ago (whatever transaction
created deliveries in it has committed) and none of the webhook's deliveries created in
it is still pending. A settled delivery changes only by a redelivery (finished → pending
again) or by being deleted (a prune, the admin); both raise the webhook's epoch (`invalidate`), which voids
every hour counted before. The epoch is read before anything is counted, so a count
that races an invalidation is stored under the old epoch: void, never wrong. The rest of
a window (its first partial hour, the unsettled tail) is counted from the deliveries.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Min, Q

from hooks.models import Delivery, DeliveryHour, DeliveryHourEpoch, HubEpoch, HubHour, Webhook

Status = Delivery.Status
HOUR = timedelta(hours=1)
SETTLE = timedelta(minutes=15)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def finished(webhook: Webhook, since: datetime, until: datetime | None = None) -> tuple[int, int]:
    """(succeeded, failed) among `webhook`'s deliveries created from `since` (to `until`),
    counted from the deliveries themselves."""
    deliveries = Delivery.objects.filter(webhook=webhook, created_at__gte=since)
    if until is not None:
        deliveries = deliveries.filter(created_at__lt=until)
    counts = deliveries.aggregate(
        # Counting the status (not the id) lets the (webhook, created_at) index answer.
        succeeded=Count("status", filter=Q(status=Status.SUCCEEDED)),
        failed=Count("status", filter=Q(status=Status.FAILED)),
    )
    return counts["succeeded"], counts["failed"]


def counts(webhook: Webhook, since: datetime, now: datetime) -> tuple[int, int]:
    """(succeeded, failed) among `webhook`'s deliveries created since `since`: settled
    hours from their rollup (counting those not counted yet), the rest directly."""
    epoch = _epoch(webhook)  # before anything is counted: see the module's docstring
    first, limit = ceil_hour(since), _settled_until(webhook, now)
    if limit <= first:
        return finished(webhook, since)
    hours = _hours(webhook, epoch, first, limit)
    head, tail = finished(webhook, since, first), finished(webhook, limit)
    succeeded = head[0] + tail[0] + sum(ok for ok, _ in hours.values())
    failed = head[1] + tail[1] + sum(bad for _, bad in hours.values())
    return succeeded, failed


def _epoch(webhook: Webhook) -> int:
    row = DeliveryHourEpoch.objects.filter(webhook=webhook).values_list("epoch", flat=True)
    return row.first() or 0


def _settled_until(webhook: Webhook, now: datetime) -> datetime:
    """The end of the settled hours: none after the hour of the oldest pending delivery."""
    limit = floor_hour(now - SETTLE)
    oldest = (
        Delivery.objects.filter(webhook=webhook, status=Status.PENDING)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return limit if oldest is None else min(limit, floor_hour(oldest))


def _hours(
    webhook: Webhook, epoch: int, first: datetime, limit: datetime
) -> dict[datetime, tuple[int, int]]:
    """Each hour from `first` up to `limit`: its counts under `epoch`, counting and
    storing the hours that have none."""
    rows = DeliveryHour.objects.filter(
        webhook=webhook, epoch=epoch, hour__gte=first, hour__lt=limit
    )
    known = {row.hour: (row.succeeded, row.failed) for row in rows}
    starts = [first + i * HOUR for i in range(int((limit - first) / HOUR))]
    fresh = {hour: finished(webhook, hour, hour + HOUR) for hour in starts if hour not in known}
    if fresh:
        DeliveryHour.objects.bulk_create(
            [
                DeliveryHour(webhook=webhook, hour=hour, epoch=epoch, succeeded=ok, failed=bad)
                for hour, (ok, bad) in fresh.items()
            ],
            update_conflicts=True,
            unique_fields=["webhook", "hour"],
            update_fields=["epoch", "succeeded", "failed"],
        )
    return known | fresh


def invalidate(webhook_ids: Iterable[int | None]) -> None:
    """Void what was counted for these webhooks (call in the transaction that changes
    their settled deliveries; None: a delivery without a webhook), and the hub's hours."""
    given = set(webhook_ids)
    if given:
        _raise_hub_epoch()
    ids = sorted(pk for pk in given if pk is not None)
    if not ids:
        return
    existing = Webhook.objects.filter(pk__in=ids).values_list("pk", flat=True)
    DeliveryHourEpoch.objects.bulk_create(
        [DeliveryHourEpoch(webhook_id=pk) for pk in existing], ignore_conflicts=True
    )
    DeliveryHourEpoch.objects.filter(webhook_id__in=ids).update(epoch=F("epoch") + 1)


def forget_before(moment: datetime) -> int:
    """Drop the hours before `moment`, the webhooks' and the hub's (a prune's: their
    deliveries are gone; the prune also invalidates the webhooks it reached, for a count
    that raced it)."""
    deleted, _ = DeliveryHour.objects.filter(hour__lt=ceil_hour(moment)).delete()
    HubHour.objects.filter(hour__lt=ceil_hour(moment)).delete()
    return deleted


# --- the hub's hours (the dashboard) ----------------------------------------------------
def _hub_epoch() -> int:
    return HubEpoch.objects.filter(pk=1).values_list("epoch", flat=True).first() or 0


def _raise_hub_epoch() -> None:
    HubEpoch.objects.bulk_create([HubEpoch(pk=1)], ignore_conflicts=True)
    HubEpoch.objects.filter(pk=1).update(epoch=F("epoch") + 1)


def hub_finished(since: datetime, until: datetime) -> tuple[int, int, int]:
    """(all, succeeded, failed) among every delivery created from `since` to `until`,
    counted from the (created_at, status) index."""
    counts = Delivery.objects.filter(created_at__gte=since, created_at__lt=until).aggregate(
        total=Count("status"),
        succeeded=Count("status", filter=Q(status=Status.SUCCEEDED)),
        failed=Count("status", filter=Q(status=Status.FAILED)),
    )
    return counts["total"], counts["succeeded"], counts["failed"]


def hub_settled_until(now: datetime) -> datetime:
    """The end of the hub's settled hours: none after the hour of its oldest pending
    delivery. Grouped by webhook, so the pending rows are read through their partial
    index (an ORDER BY created_at made SQLite walk the whole history's time index)."""
    limit = floor_hour(now - SETTLE)
    pending = Delivery.objects.filter(status=Status.PENDING).order_by().values("webhook_id")
    oldest = min((row["oldest"] for row in pending.annotate(oldest=Min("created_at"))),
                 default=None)  # fmt: skip
    return limit if oldest is None else min(limit, floor_hour(oldest))


def hub_hours(first: datetime, limit: datetime) -> dict[datetime, tuple[int, int, int]]:
    """Each settled hour from `first` up to `limit` (whole UTC hours): (all, succeeded,
    failed), counting and storing the hours not counted under the current epoch. No
    delivery of a settled hour is pending."""
    epoch = _hub_epoch()  # before anything is counted: see the module's docstring
    rows = HubHour.objects.filter(epoch=epoch, hour__gte=first, hour__lt=limit)
    known = {row.hour: (row.total, row.succeeded, row.failed) for row in rows}
    starts = [first + i * HOUR for i in range(max(int((limit - first) / HOUR), 0))]
    fresh = {hour: hub_finished(hour, hour + HOUR) for hour in starts if hour not in known}
    if fresh:
        HubHour.objects.bulk_create(
            [HubHour(hour=hour, epoch=epoch, total=total, succeeded=ok, failed=bad)
             for hour, (total, ok, bad) in fresh.items()],
            update_conflicts=True, unique_fields=["hour"],
            update_fields=["epoch", "total", "succeeded", "failed"],
        )  # fmt: skip
    return known | fresh

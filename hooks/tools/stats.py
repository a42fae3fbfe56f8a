"""Numbers about deliveries: per webhook (the `status` command) and for the dashboard."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from hooks.models import Attempt, Delivery, Webhook
from hooks.tools import rollup

Status = Delivery.Status
LATENCY_SAMPLE = 20_000
FAILURE_SAMPLE = 2_000
STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.PENDING)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of a sorted list."""
    if not values:
        return None
    rank = max(1, round(p / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def success_rate(succeeded: int, failed: int) -> float | None:
    finished = succeeded + failed
    return succeeded / finished if finished else None


@dataclass
class WebhookStatus:
    webhook: Webhook
    succeeded: int
    failed: int
    backlog: int
    last_failure: Attempt | None
    held: int = 0  # of an ordered webhook: waiting behind an earlier event of their subject

    @property
    def rate(self) -> float | None:
        return success_rate(self.succeeded, self.failed)

    @property
    def state(self) -> str:
        if self.webhook.is_disabled:
            return "disabled"
        if not self.webhook.active:
            return "inactive"
        return "failing" if self.webhook.consecutive_failures else "ok"


def webhook_status(webhook: Webhook, since: datetime, now: datetime | None = None) -> WebhookStatus:
    succeeded, failed = rollup.counts(webhook, since, now or timezone.now())
    backlog = Delivery.objects.filter(webhook=webhook, status=Status.PENDING).count()
    held = 0
    if webhook.ordered:  # the chain index's terms (a partial index of unfinished ordered rows)
        held = Delivery.objects.filter(
            webhook=webhook, status=Status.HELD, subject__isnull=False
        ).count()
    last_failure = (
        Attempt.objects.filter(delivery__webhook=webhook, succeeded=False)
        .order_by("-started_at")
        .first()
    )
    return WebhookStatus(webhook, succeeded, failed, backlog, last_failure, held)


@dataclass
class Summary:
    period: str
    since: datetime
    deliveries: int = 0
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    backlog_due: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    failures_by_webhook: list[tuple[str, int]] = field(default_factory=list)
    failures_sampled: bool = False  # only the latest FAILURE_SAMPLE failed attempts counted
    buckets: list[tuple[datetime, int, int]] = field(default_factory=list)  # (start, ok, failed)

    @property
    def rate(self) -> float | None:
        return success_rate(self.succeeded, self.failed)


PERIODS = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(days=1)),
}


def summary(period: str = "24h", now: datetime | None = None) -> Summary:
    span, step = PERIODS[period]
    now = now or timezone.now()
    since = now - span
    result = Summary(period, since)
    first = _floor(timezone.localtime(since), step)
    starts = [first + i * step for i in range(int(span / step) + 1)]
    counts, per_bucket = _period_counts(since, starts, now)
    result.deliveries, result.succeeded = counts["total"], counts["succeeded"]
    result.failed, result.pending = counts["failed"], counts["pending"]
    result.buckets = [(start, *ok_bad) for start, ok_bad in zip(starts, per_bucket, strict=True)]
    result.backlog_due = Delivery.objects.filter(
        status=Status.PENDING, next_attempt_at__lte=now
    ).count()
    attempts = Attempt.objects.filter(started_at__gte=since)
    durations = sorted(
        attempts.filter(response_status__isnull=False)
        .order_by("-started_at")
        .values_list("duration_ms", flat=True)[:LATENCY_SAMPLE]
    )
    result.p50_ms, result.p95_ms = percentile(durations, 50), percentile(durations, 95)
    result.failures_by_webhook, result.failures_sampled = failures_by_webhook(attempts)
    return result


def failures_by_webhook(attempts: QuerySet[Attempt]) -> tuple[list[tuple[str, int]], bool]:
    """The ten webhooks with the most failed attempts among `attempts`, and whether only
    the latest FAILURE_SAMPLE were counted: each failure is a delivery to read, and a
    broken endpoint under load makes hundreds of thousands a week."""
    failed = attempts.filter(succeeded=False).order_by("-started_at")  # a partial index
    sampled = failed[: FAILURE_SAMPLE + 1].count() > FAILURE_SAMPLE
    # The sample as a derived table (an IN of its ids read each attempt twice).
    sql, params = failed.values("delivery_id")[:FAILURE_SAMPLE].query.sql_with_params()
    delivery, webhook = Delivery._meta.db_table, Webhook._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT w.name, COUNT(*) AS n FROM ({sql}) a "
            f"JOIN {delivery} d ON d.id = a.delivery_id JOIN {webhook} w ON w.id = d.webhook_id "
            "GROUP BY w.name ORDER BY n DESC, w.name LIMIT 10",
            params,
        )
        return [(name, n) for name, n in cursor.fetchall()], sampled


def _period_counts(
    since: datetime, starts: list[datetime], now: datetime
) -> tuple[dict[str, int], list[tuple[int, int]]]:
    """The period's totals and each bucket's (successes, failures). A bucket's settled
    whole hours come from the hub's hourly rollup (hooks.tools.rollup: a week is 168
    small rows however busy it was); its edges and the unsettled tail are counted, each
    a range of the (created_at, status) index read alone."""
    settled = rollup.hub_settled_until(now)
    first = rollup.ceil_hour(since)
    hours = rollup.hub_hours(first, settled) if settled > first else {}
    totals = {"total": 0, "succeeded": 0, "failed": 0, "pending": 0}
    per_bucket = []
    for start, end in itertools.pairwise([since, *starts[1:], None]):
        low = rollup.ceil_hour(start)
        high = min(settled, rollup.floor_hour(end)) if end is not None else settled
        if high <= low:  # no settled whole hour in it
            parts = [_counted(start, end)]
        else:
            rolled = [hours[low + i * rollup.HOUR] for i in range(int((high - low) / rollup.HOUR))]
            parts = [_counted(start, low), _counted(high, end),
                     {"total": sum(h[0] for h in rolled), "succeeded": sum(h[1] for h in rolled),
                      "failed": sum(h[2] for h in rolled), "pending": 0}]  # fmt: skip
        bucket = {key: sum(part[key] for part in parts) for key in totals}
        per_bucket.append((bucket["succeeded"], bucket["failed"]))
        for key, value in bucket.items():
            totals[key] += value
    return totals, per_bucket


def _counted(start: datetime, end: datetime | None) -> dict[str, int]:
    """The deliveries created from `start` to `end` (None: now), counted. (A truncation
    per row was a Python function call for each delivery on SQLite; a GROUP BY status
    made SQLite walk the status index over the whole table.)"""
    within = Delivery.objects.filter(created_at__gte=start)
    if end is not None:
        if end <= start:
            return {"total": 0, "succeeded": 0, "failed": 0, "pending": 0}
        within = within.filter(created_at__lt=end)
    return within.aggregate(
        total=Count("status"),  # a column of the index (the id is not)
        **{status: Count("status", filter=Q(status=status)) for status in STATUSES},
    )


def _floor(moment: datetime, step: timedelta) -> datetime:
    if step >= timedelta(days=1):
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)

"""Numbers about deliveries: per webhook (the `status` command) and for the dashboard."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from hooks.models import Attempt, Delivery, Webhook
from hooks.tools import rollup

Status = Delivery.Status
LATENCY_SAMPLE = 20_000
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
    counts, per_bucket = _period_counts(since, starts)
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
    result.failures_by_webhook = list(
        attempts.filter(succeeded=False, delivery__webhook__isnull=False)
        .values_list("delivery__webhook__name")
        .annotate(n=Count("pk"))
        .order_by("-n")[:10]
    )
    return result


def _period_counts(
    since: datetime, starts: list[datetime]
) -> tuple[dict[str, int], list[tuple[int, int]]]:
    """The period's totals and each bucket's (successes, failures): one small count
    per bucket, each a range of the (created_at, status) index read alone. (A truncation
    per row was a Python function call for each delivery on SQLite; a GROUP BY status
    made SQLite walk the status index over the whole table.)"""
    totals = {"total": 0, "succeeded": 0, "failed": 0, "pending": 0}
    per_bucket = []
    for start, end in itertools.pairwise([since, *starts[1:], None]):
        within = Delivery.objects.filter(created_at__gte=start)
        if end is not None:
            within = within.filter(created_at__lt=end)
        bucket = within.aggregate(
            total=Count("status"),  # a column of the index (the id is not)
            **{status: Count("status", filter=Q(status=status)) for status in STATUSES},
        )
        per_bucket.append((bucket["succeeded"], bucket["failed"]))
        for key, value in bucket.items():
            totals[key] += value
    return totals, per_bucket


def _floor(moment: datetime, step: timedelta) -> datetime:
    if step >= timedelta(days=1):
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)

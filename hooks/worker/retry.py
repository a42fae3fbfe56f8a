"""Deciding what follows an attempt: success, a retry on the schedule (the schedule is
data), or failure for good.

Long waits are rows with `next_attempt_at`, picked up by the sweeper, not broker
countdowns: a broker's visibility timeout would re-run or lose a task that waits
for hours (the reason pretix does the same).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.utils import timezone

from hooks.conf import HookSettings
from hooks.models import Delivery
from hooks.outgoing.transport import Result

Status = Delivery.Status

JITTER = 0.2
RETRY_AFTER_MAX = 24 * 3600.0


def delay_before(attempt_number: int, schedule: tuple[float, ...], rng=random) -> float | None:
    """Seconds to wait before attempt `attempt_number` (1-based); None once exhausted."""
    if attempt_number > len(schedule):
        return None
    base = schedule[attempt_number - 1]
    return base * (1 + rng.uniform(-JITTER, JITTER))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), clamped to a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or timezone.now())).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def next_attempt_at(
    attempts_made: int,
    schedule: tuple[float, ...],
    retry_after: float | None = None,
    now: datetime | None = None,
) -> datetime | None:
    """When to try again after `attempts_made` attempts; None when the schedule is spent.

    A receiver's Retry-After wins over the schedule (it knows its own load), but
    never shortens the wait and never stretches it past a day.
    """
    delay = delay_before(attempts_made + 1, schedule)
    if delay is None:
        return None
    if retry_after is not None:
        delay = max(delay, retry_after)
    return (now or timezone.now()) + timedelta(seconds=delay)


def next_step(delivery: Delivery, result: Result, settings: HookSettings, now: datetime) -> dict:
    """The delivery's new state after this attempt: 2xx succeeds (the delivery's own
    success status alone, when it has one: `Result.ok`), 410 fails for good,
    anything else is retried on the delivery's schedule (or the hub's) until it is
    spent; 429/503 wait at least their Retry-After."""
    if result.ok:
        return {"status": Status.SUCCEEDED, "completed_at": now, "next_attempt_at": None}
    if result.status == 410:
        return {"status": Status.FAILED, "completed_at": now, "next_attempt_at": None}
    retry_after = None
    if result.status in (429, 503):
        retry_after = parse_retry_after(result.headers.get("Retry-After"), now)
    next_at = None
    if delivery.attempts < delivery.max_attempts:
        schedule = tuple(delivery.retry_schedule or settings.retry_schedule)
        next_at = next_attempt_at(delivery.attempts, schedule, retry_after, now)
    if next_at is None:
        return {"status": Status.FAILED, "completed_at": now, "next_attempt_at": None}
    return {"status": Status.PENDING, "next_attempt_at": next_at}

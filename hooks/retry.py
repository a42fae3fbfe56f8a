"""The retry schedule, as data, and the rules that pick the next attempt time.

Long waits are rows with `next_attempt_at`, picked up by the sweeper, not broker
countdowns: a broker's visibility timeout would re-run or lose a task that waits
for hours (the reason pretix does the same).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.utils import timezone

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

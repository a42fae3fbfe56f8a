"""The engine's Prometheus metrics that workers count as they go (prometheus-client in
multiprocess mode: each process writes its own file under PROMETHEUS_MULTIPROC_DIR, one
folder per machine, and a scrape on that machine sums them). Counted after the write
transaction that recorded them commits, so a retried transaction counts once.

What the database knows at any moment (backlog, disabled webhooks) is read at scrape
time instead: hooks/tools/metrics.py."""

from __future__ import annotations

import bisect
import collections

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "webhookhub_deliveries",
    "Deliveries that ended, by outcome (succeeded, failed) and event type.",
    ["outcome", "event_type"],
)
ATTEMPTS = Counter(
    "webhookhub_attempts",
    "Attempts made, by the response's class (2xx, 3xx, 4xx, 5xx, or error: no answer).",
    ["response_class"],
)
RETRIES = Counter("webhookhub_retries", "Attempts that failed and were scheduled again.")
LATENCY = Histogram(
    "webhookhub_delivery_latency_seconds",
    "From the event's commit to the attempt that delivered it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
DURATION = Histogram(
    "webhookhub_attempt_duration_seconds",
    "How long one attempt's request took, to the answer or the error.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60),
)
IN_FLIGHT = Gauge(
    "webhookhub_pump_in_flight",
    "Requests one worker process has out now (one series per live process).",
    multiprocess_mode="liveall",
)
HELD = Gauge(
    "webhookhub_pump_held",
    "Deliveries one worker process holds claimed: in flight, waiting or being recorded.",
    multiprocess_mode="liveall",
)
RECORDED = Counter("webhookhub_pump_recorded", "Attempts recorded by the pumps.")


def response_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "error"


def observe(attempts, statuses, now) -> None:
    """Count recorded attempts: `attempts` (Attempt rows) with their delivery's new
    status, at the recording time `now`. Each counter series is incremented once per
    batch: in multiprocess mode every increment is a write to the process's file (a
    per-attempt increment cost the workers ~4 % of their Python time in a fast drain)."""
    RECORDED.inc(len(attempts))
    classes: collections.Counter[tuple[str]] = collections.Counter()
    ended: collections.Counter[tuple[str, str]] = collections.Counter()
    durations, latencies, retries = [], [], 0
    for attempt, status in zip(attempts, statuses, strict=True):
        classes[(response_class(attempt.response_status),)] += 1
        durations.append(attempt.duration_ms / 1000)
        delivery = attempt.delivery
        if status == "pending":
            retries += 1
            continue
        ended[status, delivery.event.type] += 1
        if status == "succeeded":
            latencies.append(max((now - delivery.created_at).total_seconds(), 0.0))
    _add(ATTEMPTS, classes)
    _add(DELIVERIES, ended)
    observe_all(DURATION, durations)
    observe_all(LATENCY, latencies)
    if retries:
        RETRIES.inc(retries)


def observe_all(histogram: Histogram, amounts: list[float]) -> None:
    """`histogram.observe(amount)` for each amount, with each bucket and the sum written
    once (by prometheus-client's own bucket bounds and values, which `observe` walks
    for one amount at a time)."""
    bounds = getattr(histogram, "_upper_bounds", None)
    if bounds is None or not hasattr(histogram, "_buckets"):  # another client version
        for amount in amounts:
            histogram.observe(amount)
        return
    if not amounts:
        return
    histogram._sum.inc(sum(amounts))
    for bucket, count in collections.Counter(
        bisect.bisect_left(bounds, a) for a in amounts
    ).items():
        histogram._buckets[bucket].inc(count)


def _add(counter: Counter, counts: collections.Counter[tuple]) -> None:
    """Each labelled series of `counter` by its count."""
    for labels, count in counts.items():
        counter.labels(*labels).inc(count)

"""Per-webhook pacing: a most requests per second (with a burst) and a most requests in
flight that hold across every worker process and machine.

Each paced webhook has one shared token bucket, a `WebhookPace` row. A pump leaves
paced webhooks out of its generic claim and claims each one's deliveries apart, in
the same write transaction: it locks the row (FOR UPDATE on PostgreSQL; SQLite has
one writer at a time anyway), refills the tokens for the time passed, and claims no
more deliveries than there are whole tokens, nor more than the webhook's most in
flight less what is claimed anywhere right now. A delivery that waits for a token is
not touched: no attempt is reserved, nothing is marked failed. The pump learns when
the next token comes and claims again then.

What the owner sets (`Webhook.rate_limit`, `rate_burst`, `max_in_flight`) is copied
to the row as the limits in force whenever the webhook is saved (`sync`); Discord
and Slack URLs get their platforms' per-webhook limits when the owner set no rate
(`CHAT_DEFAULTS`).

A receiver that answers 429 or 503 with Retry-After pauses the webhook until then for
every worker, and halves its learned rate; each answer after that raises it again by
a tenth of the rate in force, up to it (AIMD). A webhook without a rate of its own
only pauses.

Which webhooks are paced is read at most once a second per process (`paced()`), as
claims.py reads the stopped ones: with no paced webhook, a claim costs nothing more.

No pump sits idle waiting for a token: a pump with nothing else to do waits for one
only when it comes within PACE_HORIZON; otherwise it ends and leaves a wake-up on the
bucket (`owe`: `wake_at`, a little before the token). The cluster's ticker, poked
awake, starts a pump then (`wake_due`), so the worker is free meanwhile for any other
work. A pump busy with other deliveries claims the paced webhook's at each token
itself, between its other claims.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from hooks import process
from hooks.models import BodyFormat, Delivery, Webhook, WebhookPace
from hooks.outbox.handover import enqueue_pump
from hooks.outgoing import formats
from hooks.worker import claims, wakeup, writelock

Status = Delivery.Status

PACED_TTL = 1.0  # seconds a process trusts its list of paced webhooks
MAX_RATE = 1000.0  # requests per second an owner may set
MAX_BURST = 1000
MAX_IN_FLIGHT = 1000
# Per-webhook limits of the chat platforms, as (rate, burst) for a URL of theirs when
# its owner set none:
# - Discord: 5 requests per 2 seconds per webhook (https://birdie0.github.io/
#   discord-webhooks-guide/other/rate_limits.html; Discord's own answer headers,
#   https://discord.com/developers/docs/topics/rate-limits): 2/s with a burst of 1
#   never sends more than 5 in any 2 seconds.
# - Slack: 1 message per second per incoming webhook, short bursts tolerated without
#   a guarantee (https://api.slack.com/docs/rate-limits).
CHAT_DEFAULTS: dict[str, tuple[float, int]] = {
    BodyFormat.DISCORD: (2.0, 1),
    BodyFormat.SLACK: (1.0, 1),
}
RECOVERY = 0.1  # each answer after a slow-down raises the learned rate by this much of the rate
LOWEST_RATE = 0.01  # a learned rate is never halved below this (one request in 100 s)
IDLE_RECHECK = 0.5  # seconds before a pump looks again at a paced webhook with nothing due
BUSY_RECHECK = 0.2  # ... at one with as many in flight as it may have
# A pump with nothing else in flight waits for a token this close; a later one is the
# ticker's to wake a pump for, WAKE_LEAD early (the woken pump waits the rest: the
# broker's hand-over does not delay the token).
PACE_HORIZON = 0.15
WAKE_LEAD = timedelta(seconds=0.05)
TICKER = "_ticker"  # the ticker's wake-up socket (hooks.worker.wakeup), poked by `owe`


# --- the limits in force --------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    rate: float | None
    burst: int
    max_in_flight: int | None

    @property
    def any(self) -> bool:
        return self.rate is not None or self.max_in_flight is not None


def default_burst(rate: float) -> int:
    """One second's worth, at least one request."""
    return max(1, math.floor(rate))


def limits_of(webhook: Webhook) -> Limits:
    """The owner's limits, or the chat platform's for a Discord or Slack URL."""
    rate, burst = webhook.rate_limit, webhook.rate_burst
    if rate is None:
        chat = CHAT_DEFAULTS.get(formats.effective(webhook.format, webhook.url))
        if chat is not None:
            rate, burst = chat[0], burst or chat[1]
    if rate is not None and burst is None:
        burst = default_burst(rate)
    return Limits(rate, burst or 1, webhook.max_in_flight)


PACING_FIELDS = {"url", "format", "rate_limit", "rate_burst", "max_in_flight"}


def sync(webhook: Webhook, update_fields: Iterable[str] | None = None) -> None:
    """Bring the webhook's bucket in line with its limits (after it was saved). A new
    or changed bucket starts full; what a receiver taught it (learned rate, pause) is
    kept while the rate stays the same."""
    if update_fields is not None and not PACING_FIELDS & set(update_fields):
        return
    limits = limits_of(webhook)
    pace = WebhookPace.objects.filter(webhook_id=webhook.pk).first()
    if pace is None:
        if limits.any:
            WebhookPace.objects.create(
                webhook_id=webhook.pk, rate=limits.rate, burst=limits.burst,
                max_in_flight=limits.max_in_flight, tokens=limits.burst,
            )  # fmt: skip
            forget()
        return
    if (pace.rate, pace.burst, pace.max_in_flight) == (
        limits.rate, limits.burst, limits.max_in_flight
    ):  # fmt: skip
        return
    if pace.rate != limits.rate:
        pace.learned_rate = None
    pace.rate, pace.burst, pace.max_in_flight = limits.rate, limits.burst, limits.max_in_flight
    pace.tokens = min(pace.tokens, limits.burst) if limits.rate else limits.burst
    pace.save()
    forget()


# --- which webhooks are paced (cached per process) ------------------------------------
@dataclass(frozen=True)
class Paced:
    """A paced webhook as a process last read it."""

    rate: float | None
    learned_rate: float | None
    max_in_flight: int | None


def paced() -> dict[int, Paced]:
    """Webhooks with limits, or paused by their receiver: read at most once a
    second per process (a webhook paced since is claimed unpaced for that second)."""
    state = process.current()
    checked, found = state.paced_webhooks
    if time.monotonic() - checked > PACED_TTL:
        now = timezone.now()
        rows = WebhookPace.objects.filter(
            Q(rate__isnull=False) | Q(max_in_flight__isnull=False) | Q(paused_until__gt=now)
        ).values_list("webhook_id", "rate", "learned_rate", "max_in_flight")
        found = {wid: Paced(rate, learned, most) for wid, rate, learned, most in rows}
        state.paced_webhooks = (time.monotonic(), found)
    return found


def forget() -> None:
    """Read the paced webhooks again at the next claim (this process changed one)."""
    process.current().paced_webhooks = (0.0, {})


# --- the bucket -----------------------------------------------------------------------
def pace_rate(pace: WebhookPace) -> float | None:
    """The rate in force now: the learned one while it is lower."""
    if pace.rate is None:
        return None
    return min(pace.rate, pace.learned_rate) if pace.learned_rate else pace.rate


def refill(pace: WebhookPace, now: datetime) -> float:
    """The tokens there are now (the row is not saved); infinite without a rate."""
    rate = pace_rate(pace)
    if rate is None:
        return math.inf
    elapsed = max((now - pace.refilled_at).total_seconds(), 0.0)
    return min(float(pace.burst), pace.tokens + elapsed * rate)


def next_token(tokens: float, rate: float | None) -> float:
    """Seconds until a whole token is there."""
    if rate is None or tokens >= 1:
        return 0.0
    return (1 - tokens) / rate


@dataclass
class Taken:
    """What one paced claim brought: the rows claimed, when (monotonic) a pump should
    look at each webhook again (not in it: at its next claim), which of those have
    due deliveries waiting for a token, a pause or room in flight, and when (wall
    clock) those waiting for a token or a pause may send: a pump is woken then if none
    is left to look (not for room in flight: the pump holding those claims again when
    they land)."""

    claims: list
    look_again: dict[int, float]
    waiting: set[int]
    wakes: dict[int, datetime]


def in_flight(webhook_id: int, now: datetime) -> int:
    """The webhook's deliveries claimed by any worker right now."""
    return Delivery.objects.filter(
        webhook_id=webhook_id, status=Status.PENDING, claimed_until__gt=now
    ).count()


def _has_due(webhook_id: int, now: datetime) -> bool:
    return claims.due(now).filter(claims.sendable(), webhook_id=webhook_id).exists()


def claim(webhook_ids: list[int], room: int, lease: float, now: datetime | None = None) -> Taken:
    """Claim due deliveries of paced webhooks, each within its bucket and its most in
    flight, up to `room` in all. Runs in the caller's write transaction (its own
    where there is none, for the row lock)."""
    now = now or timezone.now()
    taken = Taken([], {}, set(), {})
    for webhook_id in webhook_ids:
        if room <= 0:
            break
        with transaction.atomic(savepoint=False):
            pace = _locked(webhook_id)
            if pace is None:
                continue
            tokens = refill(pace, now)
            wait, limit = _wait(pace, tokens, now), 0
            timed = wait > 0
            if not wait:
                limit = room if tokens == math.inf else min(room, math.floor(tokens))
                if pace.max_in_flight is not None:
                    limit = min(limit, pace.max_in_flight - in_flight(webhook_id, now))
                    wait = 0.0 if limit > 0 else BUSY_RECHECK
            got = claims.claim_webhook(webhook_id, limit, lease, now) if limit > 0 else None
            count = len(got.rows) if got else 0
            if count:
                taken.claims.append(got)
                _save(pace, tokens - count, now)
        room -= count
        if limit > 0 and count < limit:
            continue  # everything due was taken: look again at the next claim
        if limit > 0:
            wait = next_token(tokens - count, pace_rate(pace))
            timed = wait > 0
        if limit > 0 or _has_due(webhook_id, now):
            taken.waiting.add(webhook_id)
            if timed:
                taken.wakes[webhook_id] = now + timedelta(seconds=wait)
        else:
            wait = IDLE_RECHECK
        taken.look_again[webhook_id] = time.monotonic() + wait
    return taken


def _locked(webhook_id: int) -> WebhookPace | None:
    rows = WebhookPace.objects.filter(webhook_id=webhook_id)
    if connection.features.has_select_for_update:
        rows = rows.select_for_update()
    return rows.first()


def _wait(pace: WebhookPace, tokens: float, now: datetime) -> float:
    """Seconds the webhook must wait before anything goes (0: something may go now)."""
    if pace.paused_until and pace.paused_until > now:
        return (pace.paused_until - now).total_seconds()
    return next_token(tokens, pace_rate(pace))


def _save(pace: WebhookPace, tokens: float, now: datetime) -> None:
    if pace.rate is None:
        return  # no bucket to keep
    WebhookPace.objects.filter(pk=pace.pk).update(tokens=max(tokens, 0.0), refilled_at=now)


# --- waking a pump for a later token ---------------------------------------------------
def owe(wakes: dict[int, datetime]) -> None:
    """A pump ends while these webhooks' deliveries wait for a token or a pause: ask the
    ticker for a pump at each one's time (WAKE_LEAD early), the earliest asked for
    winning, and poke it awake to see the new time."""
    if not wakes:
        return
    with writelock.serialized(), transaction.atomic(savepoint=False):
        for webhook_id, at in sorted(wakes.items()):
            when = at - WAKE_LEAD
            WebhookPace.objects.filter(webhook_id=webhook_id).filter(
                Q(wake_at__isnull=True) | Q(wake_at__gt=when)
            ).update(wake_at=when)
    wakeup.poke(TICKER)


def next_wake() -> datetime | None:
    """The earliest pump owed to a paced webhook (one indexed look at a small table)."""
    return (
        WebhookPace.objects.filter(wake_at__isnull=False)
        .order_by("wake_at")
        .values_list("wake_at", flat=True)
        .first()
    )


def wake_due(now: datetime | None = None) -> int:
    """Start one pump for every webhook owed one by now (the ticker's, each tick; of
    two tickers only one takes each wake-up). Returns how many were owed."""
    now = now or timezone.now()
    ids = list(WebhookPace.objects.filter(wake_at__lte=now).values_list("pk", flat=True))
    if not ids:  # the usual tick: a read, no write
        return 0
    with writelock.serialized():
        woken = WebhookPace.objects.filter(pk__in=ids, wake_at__lte=now).update(wake_at=None)
    if not woken:
        return 0  # the other cluster's ticker took them
    try:
        enqueue_pump()  # it claims every paced webhook whose token is there
    except Exception:  # the broker's client raises its own errors: owed at the next tick
        with writelock.serialized():
            WebhookPace.objects.filter(pk__in=ids, wake_at__isnull=True).update(wake_at=now)
        raise
    return woken


# --- what receivers say ---------------------------------------------------------------
def slow_down(webhook_id: int, retry_after: float | None, now: datetime) -> None:
    """A 429 or 503: pause the webhook until its Retry-After for every worker, and
    halve its learned rate (a webhook without a rate only pauses). In the recording
    transaction. Without a Retry-After nor a rate of its own nothing changes, and nothing
    is written: the row would stay locked to the commit, and every worker's record of
    a receiver failing now and then with a bare 503 would queue behind it."""
    if retry_after:
        pace, _ = WebhookPace.objects.get_or_create(webhook_id=webhook_id)
        until = now + timedelta(seconds=retry_after)
        if pace.paused_until is None or pace.paused_until < until:
            pace.paused_until = until
    else:
        pace = WebhookPace.objects.filter(webhook_id=webhook_id, rate__isnull=False).first()
        if pace is None:
            return
    rate = pace_rate(pace)
    if rate is not None:
        pace.learned_rate = max(rate / 2, LOWEST_RATE)
        pace.tokens = 0.0
        pace.refilled_at = max(now, pace.paused_until or now)
    pace.save()
    forget()


def recover(webhook_id: int, answers: int) -> None:
    """Answers that were not 429/503: raise a lowered rate again, a tenth of the rate in
    force per answer, up to it (then it is forgotten)."""
    pace = WebhookPace.objects.filter(webhook_id=webhook_id, learned_rate__isnull=False).first()
    if pace is None or pace.rate is None:
        return
    learned = pace.learned_rate + RECOVERY * pace.rate * answers
    pace.learned_rate = None if learned >= pace.rate else learned
    pace.save(update_fields=["learned_rate"])


def paused_among(webhook_ids: Iterable[int], now: datetime | None = None) -> dict[int, datetime]:
    """Which of these webhooks their receiver paused, until when: another process's
    429/503 reaches this one's claims at once, not after the second it trusts its list
    of paced webhooks (one indexed read of a small table)."""
    webhook_ids = list(webhook_ids)
    if not webhook_ids:
        return {}
    rows = WebhookPace.objects.filter(
        webhook_id__in=webhook_ids, paused_until__gt=now or timezone.now()
    ).values_list("webhook_id", "paused_until")
    return dict(rows)


def throttled(status: int | None) -> bool:
    return status in (429, 503)


# --- what the pages show --------------------------------------------------------------
@dataclass(frozen=True)
class Shown:
    """A webhook's pace as its pages show it."""

    limits: Limits
    configured: bool  # the owner's rate, not a chat platform's default
    learned_rate: float | None
    paused_until: datetime | None


def shown(webhook: Webhook, now: datetime | None = None) -> Shown | None:
    """The webhook's pace for its page; None when it has neither limits nor a pause."""
    if webhook.pk is None:
        return None
    now = now or timezone.now()
    limits = limits_of(webhook)
    pace = WebhookPace.objects.filter(webhook_id=webhook.pk).first()
    paused = pace.paused_until if pace and pace.paused_until and pace.paused_until > now else None
    learned = pace.learned_rate if pace and pace.rate is not None else None
    if not limits.any and paused is None:
        return None
    return Shown(limits, webhook.rate_limit is not None, learned, paused)

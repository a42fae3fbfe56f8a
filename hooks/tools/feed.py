"""A webhook's feed: every delivery made to it, in the order it was made, from a cursor,
for a receiver that was down (or that reconciles) to catch up, and for `webhooks
forward`. Each delivery comes with its body, its headers as sent (credentials masked,
as its history shows them) and its outcome, and with the same headers signed again at
read time, so a reader can post it on without knowing the secret.

The order is (created_at, id). A cursor is the position of the last delivery read,
opaque to its reader (base64 of the webhook's id, the time and the delivery's id), and
stays valid when that delivery is pruned: the next page starts after its position.

Deliveries are made in the transaction of whoever emits their event, with `created_at`
set when they are made, not when that transaction commits. So that a cursor never
passes a delivery that is still invisible, the feed hands out only deliveries older
than WEBHOOK_FEED_SETTLE_SECONDS (the settle window) and, on PostgreSQL, older than the
oldest transaction open in the database, less the same window (`horizon`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from hooks import conf
from hooks.models import Attempt, Delivery, Webhook
from hooks.outgoing.request import headers_for, masked, sent_body, without_credentials
from hooks.worker.claims import load_apart

log = logging.getLogger("hooks.feed")

VERSION = "f1"
NOW = "now"  # `after=now`: no deliveries, and the cursor of the feed's end
MAX_LIMIT = 200
PAGE_BYTES = 8 * 1024 * 1024  # a page stops after the delivery whose body passes this
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST, LAST = uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)


class BadCursor(ValueError):
    """`after` is not a cursor of this webhook's feed; the message says what to pass."""


@dataclass(frozen=True)
class Position:
    """Where a reader is: after every delivery made before `at`, and after those made
    at `at` whose id is `id` or lower."""

    at: datetime
    id: uuid.UUID


def encode(webhook: Webhook, position: Position) -> str:
    micros = (position.at - EPOCH) // timedelta(microseconds=1)
    raw = f"{VERSION}:{webhook.pk}:{micros}:{position.id.hex}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(webhook: Webhook, cursor: str) -> Position:
    """The position a cursor of this webhook's feed names; BadCursor otherwise (a
    cursor of another webhook's feed included)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, webhook_id, micros, delivery_id = raw.split(":")
        if version != VERSION:
            raise ValueError(version)
        position = Position(EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=delivery_id))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise BadCursor(
            "after: not a cursor of a feed; pass the `next` of a page (or `now`, or nothing "
            "to start from the oldest delivery kept)."
        ) from None
    if webhook_id != str(webhook.pk):
        raise BadCursor(
            f"after: that cursor is of another webhook's feed, not webhook {webhook.pk}'s."
        )
    return position


def horizon(now: datetime) -> datetime:
    """The newest `created_at` handed out now: a settle window back, and on PostgreSQL
    as far back before the oldest transaction still open (its deliveries were made
    after it started, by a clock within the window of the database's)."""
    settle = timedelta(seconds=conf.settings().feed_settle)
    edge = now - settle
    oldest = _oldest_open_transaction()
    return min(edge, oldest - settle) if oldest else edge


def _oldest_open_transaction() -> datetime | None:
    """When the oldest transaction open in this database (but this one's) began;
    None elsewhere than on PostgreSQL (SQLite has one writer at a time, and its
    transactions are short: the settle window covers them)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            # Clients only: autovacuum's long transactions make no deliveries.
            "SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND xact_start IS NOT NULL"
        )
        return cursor.fetchone()[0]


def read_feed(
    webhook: Webhook, after: str | None, limit: int = 50, now: datetime | None = None,
    signed: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """One page of the feed after the cursor `after` (None: from the oldest delivery
    kept; `now`: none, and the cursor of the feed's end). `signed`: each delivery also
    carries its headers signed now (`signed_headers`); else that is None."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: between 1 and {MAX_LIMIT}.")
    now = now or timezone.now()
    edge = horizon(now)
    if after == NOW:
        return _page(webhook, [], encode(webhook, Position(edge, LAST)), False, edge, now)
    position = decode(webhook, after) if after else Position(EPOCH, FIRST)
    rows = list(
        Delivery.objects.filter(webhook=webhook, created_at__lte=edge)
        .filter(Q(created_at__gt=position.at) | Q(created_at=position.at, pk__gt=position.id))
        .select_related("event").order_by("created_at", "pk")[: limit + 1]
    )  # fmt: skip
    has_more = len(rows) > limit
    rows = rows[:limit]
    items, size = [], 0
    sent = _last_headers(rows)
    load_apart(rows)
    for delivery in rows:
        delivery.webhook = webhook
        item = _item(webhook, delivery, sent.get(delivery.pk), now, signed)
        items.append(item)
        size += len(item["body"] or "")
        if size >= PAGE_BYTES and delivery is not rows[-1]:
            has_more = True
            break
    if items:
        last = items[-1]
        position = Position(last["created_at"], uuid.UUID(last["id"]))
    return _page(webhook, items, encode(webhook, position), has_more, edge, now)


def _page(
    webhook: Webhook, items: list, cursor: str, has_more: bool, edge: datetime, now: datetime
) -> dict[str, Any]:
    return {"deliveries": items, "next": cursor, "has_more": has_more,
            "settled_until": edge, "signed_at": int(now.timestamp())}  # fmt: skip


def _last_headers(rows: list[Delivery]) -> dict[uuid.UUID, dict]:
    """Each delivery's request headers as its last attempt recorded them."""
    found: dict[uuid.UUID, dict] = {}
    attempts = (
        Attempt.objects.filter(delivery_id__in=[d.pk for d in rows])
        .order_by("delivery_id", "-number").values_list("delivery_id", "request_headers")
    )  # fmt: skip
    for delivery_id, headers in attempts:
        found.setdefault(delivery_id, headers)
    return found


def _missing_values(delivery: Delivery) -> str:
    """Why the body cannot be built as sent, or "": it expired (its event's payload was
    emptied), or values the event keeps apart are no longer there (pruned)."""
    event = delivery.event
    if event.body_expired_at:
        return (
            f"The body expired on {event.body_expired_at:%Y-%m-%d %H:%M} UTC "
            "(WEBHOOK_BODY_RETENTION_DAYS); its outcome and headers are kept."
        )
    if not event.stored_apart:
        return ""
    kept = len(getattr(event, "apart_values", []))
    if kept == event.stored_apart:
        return ""
    return (
        f"The body is no longer kept: {event.stored_apart - kept} of the "
        f"{event.stored_apart} large values of its event were pruned."
    )


def _item(
    webhook: Webhook, delivery: Delivery, sent: dict | None, now: datetime, signed: bool
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "cursor": encode(webhook, Position(delivery.created_at, delivery.pk)),
        "id": str(delivery.pk), "event_type": delivery.event.type,
        "event_id": str(delivery.event_id), "created_at": delivery.created_at,
        "outcome": delivery.status, "attempts": delivery.attempts,
        "response_status": delivery.last_response_status, "error": delivery.last_error,
        "completed_at": delivery.completed_at,
        "body": None, "body_encoding": "utf-8", "body_missing": _missing_values(delivery),
        "headers": sent, "signed_headers": None,
    }  # fmt: skip
    if item["body_missing"]:
        return item
    try:
        body = sent_body(delivery)  # no image fetched: a `[discord_image]` URL is not attached
    except Exception as exc:  # one delivery's body must not fail the page
        log.warning("Feed of webhook %s: the body of %s: %s", webhook.pk, delivery.pk, exc)
        item["body_missing"] = f"The body could not be built: {exc}"
        return item
    try:
        item["body"] = body.content.decode("utf-8")
    except UnicodeDecodeError:  # an upload with its image
        item["body"], item["body_encoding"] = base64.b64encode(body.content).decode(), "base64"
    headers = headers_for(delivery, body, conf.settings(), now)
    if sent is None:  # not attempted yet: as they would be sent
        item["headers"] = masked(headers, webhook)
    if signed:
        item["signed_headers"] = without_credentials(headers, webhook)
    return item

"""Claiming due deliveries so that each attempt is made by exactly one worker.

A claim is one conditional UPDATE: it only touches rows that are still due and
unclaimed (or whose lease ran out), so of two workers racing over the same rows
each row goes to one of them (PostgreSQL re-checks the WHERE clause on the
locked row; SQLite serialises writers). The claim also reserves the attempt
number, so an attempt cut short by a dying worker still counts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.db import connection, transaction
from django.db.models import CharField, F, Func, Q, QuerySet
from django.utils import timezone

from hooks import process
from hooks.models import Delivery, Event, EventValue, LargeValue, Webhook
from hooks.worker import claim_sql, rows, statements, writelock

Status = Delivery.Status


def _unclaimed(now: datetime) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


STOPPED_TTL = 1.0  # seconds a worker trusts its list of stopped webhooks


def _stopped() -> list[int]:
    """Disabled or inactive webhooks; read at most once a second per process (a
    delivery that slips through in that second is skipped right after its claim)."""
    state = process.current()
    checked, ids = state.stopped_webhooks
    if time.monotonic() - checked > STOPPED_TTL:
        ids = list(
            Webhook.objects.filter(Q(active=False) | Q(disabled_at__isnull=False)).values_list(
                "pk", flat=True
            )
        )
        state.stopped_webhooks = (time.monotonic(), ids)
    return ids


def sendable() -> Q:
    """A disabled or inactive webhook's deliveries wait to be skipped, unless redelivered.

    Written as a short id list rather than a join, so the claim stays an index scan
    on (status, next_attempt_at) however many deliveries are pending.
    """
    stopped = _stopped()
    return Q(manual=True) | ~Q(webhook_id__in=stopped) if stopped else Q()


class _Unindexed(Func):
    """`+column` on SQLite: the same value, which its planner cannot look up in an index."""

    template = "+%(expressions)s"


def due(now: datetime, by_ids: bool = False) -> QuerySet[Delivery]:
    """Due, unclaimed deliveries. `by_ids`: the caller narrows them to a list of ids,
    which SQLite must then find by primary key: without statistics its planner prefers
    the (status, next_attempt_at) range, which holds the whole backlog, and every claim
    read all of it (a drain of 20,000 spent most of its write lock there)."""
    pending = Q(status=Status.PENDING)
    deliveries = Delivery.objects.all()
    if by_ids and connection.vendor == "sqlite":
        deliveries = deliveries.alias(_status=_Unindexed("status", output_field=CharField()))
        pending = Q(_status=Status.PENDING)
    return deliveries.filter(
        _unclaimed(now), pending, next_attempt_at__lte=now, attempts__lt=F("max_attempts")
    )


@dataclass
class Claim:
    """Rows claimed under `token`, as read back: `taken()` makes them deliveries."""

    token: uuid.UUID
    rows: list[tuple]
    now: datetime


def claim(ids: Iterable | None, limit: int, lease: float, **options) -> tuple[uuid.UUID, list]:
    """Claim up to `limit` due deliveries (of `ids`, when given) for `lease` seconds,
    leaving out the webhooks in `exclude_webhooks` (endpoints at their in-flight bound);
    `options` as `claim_rows` takes them."""
    claimed = claim_rows(ids, limit, lease, **options)
    return claimed.token, taken(claimed)


def claim_rows(
    ids: Iterable | None,
    limit: int,
    lease: float,
    now: datetime | None = None,
    exclude_webhooks: list[int] | None = None,
) -> Claim:
    """`claim`'s statements alone, for a pump's write transaction: on SQLite everyone
    waits for the writer, so turning the rows into deliveries (`taken`) waits until
    after the commit. The statements are `claim_sql`'s, built once per shape."""
    now = now or timezone.now()
    token = uuid.uuid4()
    ids = None if ids is None else list(ids)
    where = (_stopped(), list(exclude_webhooks or ()))
    values = [
        Delivery._meta.get_field("claim_token").get_db_prep_value(token, connection),
        connection.ops.adapt_datetimefield_value(now + timedelta(seconds=lease)),
    ]
    if ids is not None and len(ids) <= limit:
        # Known ids: claim them straight away (the first byte goes out sooner); the
        # conditions still decide which are due and unclaimed.
        return Claim(token, _claim_ids(ids, now, values, *where) if ids else [], now)
    with transaction.atomic(savepoint=False):  # FOR UPDATE needs one
        pks = _oldest_due(ids, limit, now, *where)
        return Claim(token, _claim_ids(pks, now, values) if pks else [], now)


def claim_webhook(webhook_id: int, limit: int, lease: float, now: datetime) -> Claim:
    """Up to `limit` of one webhook's due deliveries, oldest first (a paced webhook's,
    within its bucket: hooks.worker.pacing), claimed for `lease` seconds."""
    token = uuid.uuid4()
    values = [
        Delivery._meta.get_field("claim_token").get_db_prep_value(token, connection),
        connection.ops.adapt_datetimefield_value(now + timedelta(seconds=lease)),
    ]
    found = due(now).filter(sendable(), webhook_id=webhook_id).order_by("next_attempt_at")
    if connection.features.has_select_for_update_skip_locked:
        found = found.select_for_update(skip_locked=True)
    with transaction.atomic(savepoint=False):  # FOR UPDATE needs one
        pks = list(found.values_list("pk", flat=True)[:limit])
        return Claim(token, _claim_ids(pks, now, values) if pks else [], now)


def _oldest_due(
    ids: list | None, limit: int, now: datetime, stopped: list[int], excluded: list[int]
) -> list:
    """Up to `limit` due ids, oldest first. Rows another worker is claiming right now are
    skipped, not waited for: on PostgreSQL, pumps that all picked the oldest due rows
    would queue behind each other's transactions and come back empty (SQLite has one
    writer at a time anyway)."""
    shape = claim_sql.Shape(connection.vendor, len(stopped), len(excluded), len(ids or ()), False)
    params = claim_sql.where_params(now, stopped, excluded, ids or [])
    with statements.cursor() as cursor:
        cursor.execute(claim_sql.select_sql(shape), [*params, limit])
        return [row[0] for row in cursor.fetchall()]


def _claim_ids(
    ids: list,
    now: datetime,
    values: list,
    stopped: Sequence[int] = (),
    excluded: Sequence[int] = (),
) -> list[tuple]:
    """Claim those of `ids` still due (`values`: the token and lease end, prepared)."""
    shape = claim_sql.Shape(connection.vendor, len(stopped), len(excluded), len(ids), True)
    params = values + claim_sql.where_params(now, list(stopped), list(excluded), ids)
    return _claim(claim_sql.update_sql(shape), params, values[0])


def taken(claimed: Claim) -> list[Delivery]:
    """The claimed deliveries with their events and webhooks; those of a webhook that
    stopped meanwhile are skipped (a short write of their own: it is rare)."""
    deliveries = _loaded(claimed.rows)
    stopped = [d for d in deliveries if _stopped_now(d)]
    if stopped:
        with writelock.serialized(), transaction.atomic(savepoint=False):
            _skip(stopped, claimed.token, claimed.now)
        deliveries = [d for d in deliveries if not _stopped_now(d)]
    load_apart(deliveries)
    return deliveries


def load_apart(deliveries: list[Delivery]) -> None:
    """The values their events keep apart (hooks.largevalues), as each event's
    `apart_values`: two reads, only for a claim that holds such events, each value
    loaded once however many of the deliveries carry it."""
    by_event: dict = {}
    for d in deliveries:
        if d.event.stored_apart:
            by_event.setdefault(d.event_id, []).append(d.event)
    if not by_event:
        return
    links = list(
        EventValue.objects.filter(event_id__in=list(by_event)).values_list(
            "event_id", "path", "value_id"
        )
    )
    values = LargeValue.objects.filter(pk__in={value for _, _, value in links})
    data = {pk: bytes(blob) for pk, blob in values.values_list("pk", "data")}
    found: dict = {event_id: [] for event_id in by_event}
    for event_id, path, value in links:
        found[event_id].append((tuple(path), data[value]))
    for event_id, events in by_event.items():
        for event in events:
            event.apart_values = found[event_id]


_deliveries = rows.Loader(Delivery, "d")
_events = rows.Loader(Event, "e")
_webhooks = rows.Loader(Webhook, "w")


def _claim(update_sql: str, params: list, token) -> list[tuple]:
    """Run the claim's UPDATE and read the rows back with their events and webhooks: on
    PostgreSQL in one statement (`UPDATE … RETURNING` inside a join), elsewhere in two
    (`token` as prepared for the database)."""
    if connection.vendor != "postgresql":
        with statements.cursor() as cursor:
            cursor.execute(update_sql, params)
        return _joined(Delivery._meta.db_table, "WHERE d.claim_token = %s", [token])
    with_claimed = f"WITH claimed AS ({update_sql} RETURNING {_returning()}) "
    return _joined("claimed", "", params, prefix=with_claimed)


@cache
def _returning() -> str:
    quote = connection.ops.quote_name
    table = quote(Delivery._meta.db_table)
    return ", ".join(f"{table}.{quote(f.column)}" for f in Delivery._meta.concrete_fields)


@cache
def _join_sql(vendor: str) -> tuple[str, str]:
    """The read-back's column list and joins, around its source (built once per process)."""
    columns = _deliveries.columns + _events.columns + _webhooks.columns
    webhook_id = connection.ops.quote_name(Delivery._meta.get_field("webhook").column)
    signer_id = connection.ops.quote_name(Delivery._meta.get_field("signed_by").column)
    joins = (
        f" AS d JOIN {Event._meta.db_table} AS e ON e.id = d.event_id "
        f"LEFT JOIN {Webhook._meta.db_table} AS w "
        f"ON w.id = COALESCE(d.{webhook_id}, d.{signer_id}) "
    )
    return f"SELECT {', '.join(columns)} FROM ", joins


def _joined(source: str, where: str, params: list, prefix: str = "") -> list[tuple]:
    """The rows of deliveries from `source` with their events and webhooks, in one
    statement. The webhook is the delivery's own, or for a delivery without one (a
    job's callback) the webhook whose secret signs it."""
    select, joins = _join_sql(connection.vendor)
    sql = f"{prefix}{select}{source}{joins}{where}"
    with statements.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _loaded(found: list[tuple]) -> list[Delivery]:
    """Deliveries from `_joined` rows, with one shared instance per webhook (a batch is
    often many deliveries to a few webhooks)."""
    claimed, webhooks = [], {}
    split_e, split_w = _deliveries.width, _deliveries.width + _events.width
    db = rows.current()
    for row in found:
        d = _deliveries.load(row[:split_e], db)
        rows.relate(d, "event", _events.load(row[split_e:split_w], db))
        own, signer = d.webhook_id, d.signed_by_id
        joined = own or signer
        if joined is not None and joined not in webhooks:
            webhooks[joined] = _webhooks.load(row[split_w:], db)
        rows.relate(d, "webhook", webhooks[own] if own else None)
        if not own:  # the join brought the signer only for a delivery without a webhook
            rows.relate(d, "signed_by", webhooks[signer] if signer else None)
        claimed.append(d)
    return claimed


def _stopped_now(d: Delivery) -> bool:
    return bool(d.webhook_id and not d.manual and (d.webhook.is_disabled or not d.webhook.active))


def _skip(deliveries: list[Delivery], token: uuid.UUID, now: datetime) -> None:
    """Claimed for a webhook that has just stopped: kept as skipped, attempt not counted."""
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries], claim_token=token).update(
        status=Status.SKIPPED,
        claim_token=None,
        claimed_until=None,
        attempts=F("attempts") - 1,
        next_attempt_at=None,
        completed_at=now,
    )


def release(claimed: list[tuple], due_at: datetime) -> int:
    """Hand claimed but unsent deliveries back (their reserved attempt is not counted)."""
    by_token: dict = {}
    for pk, token in claimed:
        by_token.setdefault(token, []).append(pk)
    released = 0
    for token, pks in by_token.items():
        released += Delivery.objects.filter(pk__in=pks, claim_token=token).update(
            claim_token=None,
            claimed_until=None,
            attempts=F("attempts") - 1,
            next_attempt_at=due_at,
        )
    return released


def renew(tokens: Iterable[uuid.UUID], until: datetime) -> int:
    """Extend a live worker's claims: what it still holds under `tokens` stays its own
    until `until` (rows already recorded or given back no longer carry the token)."""
    tokens = list(tokens)
    if not tokens:
        return 0
    return Delivery.objects.filter(claim_token__in=tokens).update(claimed_until=until)

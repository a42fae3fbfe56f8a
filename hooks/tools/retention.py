"""History retention, in two periods: bodies (events' payloads, the large values kept
apart for them, attempts' request and response bodies) expire after
WEBHOOK_BODY_RETENTION_DAYS, the rest (events, deliveries and attempts: types, times,
outcomes, statuses, headers, errors) after WEBHOOK_HISTORY_DAYS. Both go in batches,
so no single transaction holds the database for long, and rest while a drain is on."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from hooks import conf
from hooks.models import Attempt, Delivery, Event, EventValue, LargeValue
from hooks.outbox.event import SHARED_FOR
from hooks.tools import rollup
from hooks.worker import claims, writelock

BATCH = 500
# Events a body batch empties: on PostgreSQL a batch of 2,000 emptied 9,460 events/s
# against 6,990 at 500 (bench/retention_designs.py), and its row locks stop no writer;
# on SQLite a batch holds the one write lock, so it stays short.
BODY_BATCH = {"postgresql": 2000}
YIELD = 3.0  # while a drain is on, rest this many times a batch's time after it


def prunable(older_than: datetime):
    """Events created before `older_than` whose deliveries are all finished."""
    unfinished = Delivery.objects.filter(event=OuterRef("pk"), status=Delivery.Status.PENDING)
    return Event.objects.filter(created_at__lt=older_than).exclude(Exists(unfinished))


def prune(older_than: datetime, batch: int = BATCH, progress=None) -> dict[str, int]:
    """Delete those events with their deliveries and attempts, a batch per transaction,
    then the large values no event carries any more; returns how many rows of each kind
    went. `progress(done, None)` after each batch.

    Each batch is four DELETEs by id (no rows fetched, as the ORM's cascade would),
    under the writers' lock on SQLite; while deliveries are due (a drain is on), the
    prune rests YIELD times its batch's time after each one, so the workers keep most of
    the database's write time."""
    candidates = prunable(older_than)
    deleted: dict[str, int] = {"events": 0, "deliveries": 0, "attempts": 0}
    reached: set[int] = set()  # webhooks whose history lost deliveries
    while True:
        started = time.monotonic()
        with writelock.serialized(), transaction.atomic():
            ids = list(candidates.values_list("pk", flat=True)[:batch])
            if not ids:
                break
            reached.update(_webhooks_of(ids))
            for kind, count in _delete(ids).items():
                deleted[kind] += count
        if progress:
            progress(deleted["events"], None)
        if claims.due(timezone.now()).exists():
            time.sleep((time.monotonic() - started) * YIELD)
    with writelock.serialized(), transaction.atomic():
        rollup.forget_before(older_than)
        rollup.invalidate(reached)
    deleted["large_values"] = prune_large_values(min(older_than, timezone.now() - SHARED_FOR))
    return deleted


def prune_large_values(older_than: datetime, batch: int = BATCH) -> int:
    """Values kept apart (hooks.largevalues) that no event carries any more, stored
    before `older_than`: never one an event of the last SHARED_FOR may be sharing now."""
    unused = LargeValue.objects.filter(created_at__lt=older_than).exclude(
        Exists(EventValue.objects.filter(value=OuterRef("pk")))
    )
    pruned = 0
    while True:
        with writelock.serialized(), transaction.atomic():
            ids = list(unused.values_list("pk", flat=True)[:batch])
            if not ids:
                return pruned
            pruned += LargeValue.objects.filter(pk__in=ids).delete()[0]


def _webhooks_of(event_ids: list) -> set[int]:
    of_events = Delivery.objects.filter(event_id__in=event_ids, webhook__isnull=False)
    return set(of_events.values_list("webhook_id", flat=True).distinct())


def _delete(event_ids: list) -> dict[str, int]:
    q = connection.ops.quote_name
    field = Event._meta.pk
    params = [field.get_db_prep_value(pk, connection) for pk in event_ids]
    marks = ", ".join(["%s"] * len(params))
    attempt, delivery, event = (q(m._meta.db_table) for m in (Attempt, Delivery, Event))
    of_delivery = q(Attempt._meta.get_field("delivery").column)
    of_event = q(Delivery._meta.get_field("event").column)
    statements = {
        "attempts": f"DELETE FROM {attempt} WHERE {of_delivery} IN "
        f"(SELECT {q(Delivery._meta.pk.column)} FROM {delivery} WHERE {of_event} IN ({marks}))",
        "deliveries": f"DELETE FROM {delivery} WHERE {of_event} IN ({marks})",
        # where their large values go (the values themselves: prune_large_values)
        "links": f"DELETE FROM {q(EventValue._meta.db_table)} "
        f"WHERE {q(EventValue._meta.get_field('event').column)} IN ({marks})",
        "events": f"DELETE FROM {event} WHERE {q(field.column)} IN ({marks})",
    }
    counts = {}
    with connection.cursor() as cursor:
        for kind, sql in statements.items():
            cursor.execute(sql, params)
            counts[kind] = cursor.rowcount
    del counts["links"]
    return counts


def body_kept(older_than: datetime):
    """Events created before `older_than` that still keep their bodies, and whose
    deliveries are all finished (a delivery still being tried needs its body)."""
    unfinished = Delivery.objects.filter(event=OuterRef("pk"), status=Delivery.Status.PENDING)
    return Event.objects.filter(created_at__lt=older_than, body_expired_at__isnull=True).exclude(
        Exists(unfinished)
    )


def expire_bodies(older_than: datetime, batch: int | None = None, progress=None) -> dict[str, int]:
    """Empty the bodies of the events created before `older_than` (payload, large values,
    their attempts' request and response bodies) and mark each event with when, a batch
    per transaction; the events, deliveries and attempts themselves stay. Returns how
    many events and attempts were emptied, and how many large values went.

    An event a redelivery made pending meanwhile keeps its body: each batch locks its
    events (PostgreSQL; SQLite has one writer) and only then looks for pending
    deliveries, and a redelivery locks the events it sends again (redelivery.redeliver),
    so one of them sees the other's outcome, never neither."""
    candidates = body_kept(older_than)
    batch = batch or BODY_BATCH.get(connection.vendor, BATCH)
    done: dict[str, int] = {"events": 0, "attempts": 0}
    while True:
        started = time.monotonic()
        with writelock.serialized(), transaction.atomic():
            ids = list(candidates.order_by("created_at").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            for kind, count in _empty(_still_finished(ids), timezone.now()).items():
                done[kind] += count
        if progress:
            progress(done["events"], None)
        if claims.due(timezone.now()).exists():
            time.sleep((time.monotonic() - started) * YIELD)
    done["large_values"] = prune_large_values(min(older_than, timezone.now() - SHARED_FOR))
    return done


def _still_finished(event_ids: list) -> list:
    """Of these events, locked now, those with no pending delivery: a redelivery that
    committed before the lock is seen by this later statement."""
    list(Event.objects.select_for_update().filter(pk__in=event_ids).values_list("pk"))
    pending = Delivery.objects.filter(event_id__in=event_ids, status=Delivery.Status.PENDING)
    busy = set(pending.values_list("event_id", flat=True))
    return [pk for pk in event_ids if pk not in busy]


def _empty(event_ids: list, now: datetime) -> dict[str, int]:
    """Three statements by id: the attempts' bodies, the links to large values, the
    events' payloads (marked expired at `now`)."""
    if not event_ids:
        return {"events": 0, "attempts": 0}
    q = connection.ops.quote_name
    params = [Event._meta.pk.get_db_prep_value(pk, connection) for pk in event_ids]
    marks = ", ".join(["%s"] * len(params))
    attempt, delivery = q(Attempt._meta.db_table), q(Delivery._meta.db_table)
    of_delivery = q(Attempt._meta.get_field("delivery").column)
    of_event = q(Delivery._meta.get_field("event").column)
    request, response = (
        q(Attempt._meta.get_field(f).column) for f in ("request_body", "response_body")
    )
    counts = {}
    with connection.cursor() as cursor:
        # Only attempts with a body to empty: an UPDATE rewrites the whole row.
        cursor.execute(
            f"UPDATE {attempt} SET {request} = '', {response} = '' WHERE {of_delivery} IN "
            f"(SELECT {q(Delivery._meta.pk.column)} FROM {delivery} WHERE {of_event} IN ({marks})) "
            f"AND ({request} <> '' OR {response} <> '')",
            params,
        )
        counts["attempts"] = cursor.rowcount
        cursor.execute(
            f"DELETE FROM {q(EventValue._meta.db_table)} "
            f"WHERE {q(EventValue._meta.get_field('event').column)} IN ({marks})",
            params,
        )
    counts["events"] = Event.objects.filter(pk__in=event_ids).update(
        payload={}, stored_apart=None, body_expired_at=now
    )
    return counts


def prune_by_setting(now: datetime | None = None) -> dict[str, int]:
    """The daily task: keep WEBHOOK_HISTORY_DAYS of history (0 keeps everything), and
    WEBHOOK_BODY_RETENTION_DAYS of its bodies (0: as long as the history). Returns how
    many events went and how many had their bodies emptied."""
    current = conf.settings()
    now = now or timezone.now()
    pruned = {"events": 0, "bodies": 0}
    if current.history_days > 0:  # first: no body is emptied of a row about to go
        pruned["events"] = prune(now - timedelta(days=current.history_days))["events"]
    if current.body_days > 0:
        pruned["bodies"] = expire_bodies(now - timedelta(days=current.body_days))["events"]
    return pruned

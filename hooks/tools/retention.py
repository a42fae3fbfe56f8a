"""History retention: old events and their deliveries and attempts are pruned in batches,
so no single transaction holds the database for long."""

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


def prune_by_setting(now: datetime | None = None) -> int:
    """The daily task: keep WEBHOOK_HISTORY_DAYS of history (0 keeps everything)."""
    days = conf.settings().history_days
    if days <= 0:
        return 0
    return prune((now or timezone.now()) - timedelta(days=days))["events"]

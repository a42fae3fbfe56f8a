"""Order per subject: a webhook with `ordered` on receives a subject's events one at a
time, in their sequence order, while other subjects go on in parallel.

A chain is (webhook, subject). Fan-out (hooks.outbox.fanout) writes a delivery of an
ordered webhook as held when its chain already holds an unfinished one (pending or
held); a held delivery is never claimed. When a delivery of a chain finishes (succeeds,
fails for good, is stopped) the chain's lowest held delivery becomes pending, due at
once — if nothing else of the chain is pending (a redelivery by hand may be). Only
finished deliveries release: a failed attempt that will be retried keeps its chain
waiting, which is the point.

Races (PostgreSQL; SQLite has one writer at a time): fan-out and a release run in two
transactions. The emitting transaction holds its subject's SubjectSequence row (its
sequence upsert) until it commits; a release locks the same rows first (in subject
order, so two releases cannot deadlock). Then either the release waits for the emit to
commit and sees its held delivery, or the emit waits for the release and sees the chain
finished. The sweeper's `release_stuck` is the safety net behind both.

Unordered webhooks pay nothing: their deliveries carry no subject, so no chain is
looked at when they finish, and the chain index (`delivery_order_chain`) holds only
unfinished deliveries of ordered webhooks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from hooks.models import Delivery, SubjectSequence

log = logging.getLogger("hooks.order")
Status = Delivery.Status
Chain = tuple[int, str]  # (webhook id, subject)
UNFINISHED = f"IN ('{Status.PENDING}', '{Status.HELD}')"  # the chain index's own terms


def _table() -> str:
    return connection.ops.quote_name(Delivery._meta.db_table)


def _first_held(where: str) -> str:
    """The held deliveries (of the chains `where` picks, over alias h) that go next:
    nothing of their chain is pending, nothing held comes before them. (The sweeper's
    look over every chain; a release after a record picks its chains by `release_sql`.)"""
    table = _table()
    return (
        f"SELECT h.id FROM {table} AS h WHERE h.status {UNFINISHED} "
        f"AND h.subject IS NOT NULL AND h.status = '{Status.HELD}' AND {where} "
        f"AND NOT EXISTS (SELECT 1 FROM {table} AS p WHERE p.webhook_id = h.webhook_id "
        f"AND p.subject = h.subject AND p.status {UNFINISHED} AND p.subject IS NOT NULL "
        f"AND (p.status = '{Status.PENDING}' OR p.sequence < h.sequence))"
    )


def _release(where: str) -> str:
    """Held → pending, due when it was made (so it goes ahead of what was made after it),
    for the broker's next look (enqueued_until cleared) or the claim that follows."""
    return (
        f"UPDATE {_table()} SET status = '{Status.PENDING}', next_attempt_at = created_at, "
        f"enqueued_until = NULL WHERE id IN ({_first_held(where)})"
    )


def _chain_keys(chains: int) -> str:
    """The chains as rows (webhook_id, subject): on PostgreSQL two arrays (params: the
    webhook ids, then the subjects), one statement text whatever their number (an
    UNION of 100 rows cost 3 ms to plan at every release); elsewhere one row of params
    each (the webhook id and subject of each chain, in turn)."""
    if connection.vendor == "postgresql":
        return "SELECT * FROM unnest(%s::bigint[], %s::text[]) AS k (webhook_id, subject)"
    return " UNION ALL ".join(
        ["SELECT CAST(%s AS BIGINT) AS webhook_id, CAST(%s AS TEXT) AS subject"] * chains
    )


def _chain_params(chains: tuple[Chain, ...]) -> list:
    if connection.vendor == "postgresql":
        return [[chain[0] for chain in chains], [chain[1] for chain in chains]]
    return [value for chain in chains for value in chain]


@lru_cache(maxsize=256)
def release_sql(chains: int) -> str:
    """The release of up to one held delivery in each of `chains` chains (params: the
    released rows' `enqueued_until`, then the chains as `_chain_params` gives them).
    Each chain's first unfinished delivery is found by the chain index, in sequence
    order; it goes if it is held and nothing of its chain is pending. (Picking the held
    rows of many chains by an OR of their keys let SQLite read every held row through
    the status index instead: 0.1 s a release of 100 chains with 30,000 held, against
    1 ms this way.)"""
    table = _table()
    first = (  # its id if it is held (the status is tested here, not by the UPDATE: there
        # SQLite would read every held row through the status index)
        f"SELECT (SELECT CASE WHEN h.status = '{Status.HELD}' THEN h.id END "
        f"FROM {table} AS h WHERE h.webhook_id = c.webhook_id "
        f"AND h.subject = c.subject AND h.status {UNFINISHED} AND h.subject IS NOT NULL "
        f"ORDER BY h.sequence LIMIT 1) FROM ({_chain_keys(chains)}) AS c"
    )
    return (
        f"UPDATE {table} SET status = '{Status.PENDING}', next_attempt_at = created_at, "
        f"enqueued_until = %s WHERE id IN ({first}) "
        f"AND NOT EXISTS (SELECT 1 FROM {table} AS p WHERE p.webhook_id = {table}.webhook_id "
        f"AND p.subject = {table}.subject AND p.status {UNFINISHED} "
        f"AND p.subject IS NOT NULL AND p.status = '{Status.PENDING}')"
    )


@lru_cache(maxsize=4)
def _lock_sql(wait: bool) -> str:
    """PostgreSQL's lock of the subjects' rows (param: their subjects, an array)."""
    table = connection.ops.quote_name(SubjectSequence._meta.db_table)
    skip = "" if wait else " SKIP LOCKED"
    return (
        f"SELECT subject FROM {table} WHERE subject = ANY(%s::text[]) "
        f"ORDER BY subject FOR UPDATE{skip}"
    )


BATCH = 100  # chains per release statement
LATE_LOCK_TIMEOUT = "2s"  # a late release waits this long for an emitting transaction


@dataclass(frozen=True)
class Release:
    """The release of the next held delivery of each chain, run in the transaction that
    finished their deliveries (after those updates). On PostgreSQL the chains' subject
    rows are locked first (see the module's docstring); with `wait` off (a worker's
    record) a row an emitting transaction holds is skipped rather than waited for, so a
    worker's record never waits on another's open transaction: that chain is released
    from what is visible now and again after the commit (`release_late`).

    `until` is the released rows' `enqueued_until`. None: the ticker's next look hands
    them to the broker. A pump's record gives a time (`pump_holds`): the pump claims
    again at once (`Pump.took_released`), and the ticker, which would otherwise hand
    every released row waiting behind a backlog to the broker again each second (one
    more UPDATE of it, and a pump task, for nothing), leaves them to it until then."""

    chains: tuple[Chain, ...]
    wait: bool = True
    until: datetime | None = None

    @classmethod
    def of(
        cls, chains: Iterable[Chain], wait: bool = True, until: datetime | None = None
    ) -> Release:
        return cls(tuple(sorted(set(chains), key=lambda chain: (chain[1], chain[0]))), wait, until)

    def run(self, cursor) -> tuple[int, set[Chain]]:
        """How many held deliveries went pending, and the chains to release again after
        the commit (their subject was held by an emitting transaction)."""
        if not self.chains:
            return 0, set()
        late: set[Chain] = set()
        if connection.vendor == "postgresql":
            subjects = sorted({subject for _, subject in self.chains})
            cursor.execute(_lock_sql(self.wait), [subjects])
            locked = {row[0] for row in cursor.fetchall()}
            late = {chain for chain in self.chains if chain[1] not in locked}
        until = connection.ops.adapt_datetimefield_value(self.until)
        released = 0
        for start in range(0, len(self.chains), BATCH):
            part = self.chains[start : start + BATCH]
            cursor.execute(release_sql(len(part)), [until, *_chain_params(part)])
            released += cursor.rowcount
        return released, late


def release(chains: Iterable[Chain]) -> int:
    """Release the next held delivery of each chain, in the caller's transaction (a
    stop, a webhook whose order was turned off). Returns how many were released."""
    with connection.cursor() as cursor:
        return Release.of(chains).run(cursor)[0]


def pump_holds(lease: float, now: datetime | None = None) -> datetime:
    """How long a pump's record keeps what it releases from the ticker: a claim lease,
    as a pump that dies gives up its claims within one."""
    return (now or timezone.now()) + timedelta(seconds=lease)


def release_late(chains: Iterable[Chain], until: datetime | None = None) -> int:
    """After a record's commit, the chains whose subject an emitting transaction held:
    that transaction may have written a held delivery the record could not see. Waits
    for it and releases what is due; returns how many were released. One subject a
    transaction: a wait while holding no other lock can be no part of a deadlock (an
    application's transaction locks its subjects in its own order). The first wait
    longer than LATE_LOCK_TIMEOUT leaves the rest to the sweeper's `release_stuck`.
    `until` as `Release` takes it."""
    by_subject: dict[str, list[Chain]] = {}
    for chain in chains:
        by_subject.setdefault(chain[1], []).append(chain)
    released = 0
    for subject in sorted(by_subject):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LATE_LOCK_TIMEOUT}'")
                released += Release.of(by_subject[subject], until=until).run(cursor)[0]
        except OperationalError as exc:
            log.info("A late release waited too long (%s); the sweeper will release.", exc)
            break
    return released


def chains_of(deliveries) -> set[Chain]:
    """The chains of these deliveries (a queryset), those of ordered webhooks only."""
    found = deliveries.filter(subject__isnull=False, webhook__isnull=False)
    return set(found.values_list("webhook_id", "subject").distinct())


def release_stuck() -> int:
    """The sweeper's safety net: every held delivery whose chain has nothing pending and
    nothing held before it goes (a release that could not happen: a worker that died
    between its attempt and its record, a webhook whose order was turned off)."""
    with connection.cursor() as cursor:
        cursor.execute(_release("1 = 1"))
        return cursor.rowcount


def unhold(webhook_id: int) -> int:
    """Every held delivery of a webhook goes (its order was turned off)."""
    return Delivery.objects.filter(webhook_id=webhook_id, status=Status.HELD).update(
        status=Status.PENDING, next_attempt_at=timezone.now(), enqueued_until=None
    )

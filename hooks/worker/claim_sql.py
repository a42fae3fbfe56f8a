"""The claim's statements, written once per shape instead of compiled for every batch.

A pump claims many times a second, each time under SQLite's write lock. Building the
claim with the ORM (`claims.due`, the stopped and excluded webhooks, the UPDATE)
cost 2–3 ms of a 28-delivery batch. The SQL only changes with the number of
stopped and excluded webhooks and of ids, so it is built once per such shape and
cached. `claims.due()` remains the definition of "due": tests/test_claims.py checks
that both pick the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.db import connection

from hooks.models import Delivery

Status = Delivery.Status


@dataclass(frozen=True)
class Shape:
    """What the statement's text depends on."""

    vendor: str
    stopped: int  # webhooks whose deliveries wait (unless redelivered by hand)
    excluded: int  # webhooks the pump holds enough for
    ids: int  # ids the claim is narrowed to (0: none)
    by_ids: bool  # SQLite: find the rows by primary key, not the (status, due) range


def _column(name: str) -> str:
    quote = connection.ops.quote_name
    return f"{quote(Delivery._meta.db_table)}.{quote(Delivery._meta.get_field(name).column)}"


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def _where(shape: Shape) -> str:
    """`claims.due(now).filter(claims.sendable())`, less the excluded, within the ids."""
    claimed_until, webhook = _column("claimed_until"), _column("webhook")
    # `+status` is the same value, which SQLite's planner cannot look up in an index.
    status = ("+" if shape.by_ids and shape.vendor == "sqlite" else "") + _column("status")
    parts = [
        f"({claimed_until} IS NULL OR {claimed_until} < %s)",
        f"{status} = %s",
        f"{_column('attempts')} < {_column('max_attempts')}",
        f"{_column('next_attempt_at')} <= %s",
    ]
    if shape.stopped:
        stopped = _marks(shape.stopped)
        parts.append(f"({_column('manual')} OR {webhook} IS NULL OR {webhook} NOT IN ({stopped}))")
    if shape.excluded:
        parts.append(f"({webhook} IS NULL OR {webhook} NOT IN ({_marks(shape.excluded)}))")
    if shape.ids:
        parts.append(f"{_column('id')} IN ({_marks(shape.ids)})")
    return " AND ".join(parts)


@lru_cache(maxsize=512)
def select_sql(shape: Shape) -> str:
    """The ids of the oldest due rows, up to a limit; rows another worker is claiming
    right now are skipped where the database can (PostgreSQL)."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    sql = (
        f"SELECT {_column('id')} FROM {table} WHERE {_where(shape)} "
        f"ORDER BY {_column('next_attempt_at')} ASC LIMIT %s"
    )
    if connection.features.has_select_for_update_skip_locked:
        sql += " FOR UPDATE SKIP LOCKED"
    return sql


@lru_cache(maxsize=512)
def update_sql(shape: Shape) -> str:
    """Mark the due rows as claimed and reserve their attempt."""
    quote = connection.ops.quote_name
    table = quote(Delivery._meta.db_table)
    column = {name: quote(Delivery._meta.get_field(name).column) for name in (
        "claim_token", "claimed_until", "attempts", "enqueued_until",
    )}  # fmt: skip
    return (
        f"UPDATE {table} SET {column['claim_token']} = %s, {column['claimed_until']} = %s, "
        f"{column['attempts']} = ({_column('attempts')} + 1), "
        f"{column['enqueued_until']} = NULL WHERE {_where(shape)}"
    )


def where_params(now: datetime, stopped: list[int], excluded: list[int], ids: list) -> list:
    """The parameters of `_where`, in its order, prepared for the database."""
    moment = connection.ops.adapt_datetimefield_value(now)
    pk = Delivery._meta.pk
    prepared_ids = [pk.get_db_prep_value(i, connection) for i in ids]
    return [moment, Status.PENDING, moment, *stopped, *excluded, *prepared_ids]

"""Who receives an event, and its deliveries written in one `INSERT … SELECT`.

emit() is on the caller's request path, so it must cost little: instead of reading
the subscribing webhooks into model instances and inserting a row per instance, the
database picks the subscribers and writes their deliveries in one statement
(`RETURNING` hands back the ids to enqueue; on PostgreSQL the event row goes in
the same statement). The subscriber condition is written once, here, and serves
both that statement and `subscribers()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from functools import cache, lru_cache

from django.db import connection

from hooks import catalog
from hooks.models import ALL_EVENTS, Delivery, Event, Scope, Webhook
from hooks.outbox import filters

Status = Delivery.Status
SQLITE_UUID = "hooks_uuid4"
# A delivery written for a webhook with a payload filter, until the filter decides (in
# the same transaction, so no other session ever sees it).
FILTERING = "filtering"


def add_sqlite_functions(sender, connection, **kwargs) -> None:
    """SQLite has no UUID function: give it Python's (PostgreSQL has gen_random_uuid).
    Connected to `connection_created` in HooksConfig.ready, before any connection."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_UUID, 0, lambda: uuid.uuid4().hex)


def _event_type_matches() -> str:
    """SQL true when webhook `w` subscribes to the event type in %s (or to all)."""
    if connection.vendor == "postgresql":
        return "w.event_types ?| ARRAY[%s, %s]"
    return "EXISTS (SELECT 1 FROM json_each(w.event_types) AS t WHERE t.value IN (%s, %s))"


def condition(
    event_type: catalog.EventType,
    user_id=None,
    namespace: str = "",
    audience: tuple[str, ...] | None = None,
    webhooks: Collection[int] | None = None,
    not_to: int | None = None,
) -> tuple[str, list]:
    """The WHERE clause (over webhook `w`) picking the active webhooks that receive this
    event: server ones, the user's, the namespace's (only `audience` scopes, when given;
    only the `webhooks` ids, when given; never webhook `not_to`)."""
    allowed = set(event_type.scopes) & set(audience or catalog.SCOPES)
    scopes, params = [], []
    if catalog.SERVER in allowed:
        scopes.append("w.scope = %s")
        params.append(Scope.SERVER.value)
    if user_id is not None and catalog.USER in allowed:
        scopes.append("(w.scope = %s AND w.owner_id = %s)")
        params += [Scope.USER.value, user_id]
    if namespace and catalog.NAMESPACE in allowed:
        scopes.append("(w.scope = %s AND w.namespace = %s)")
        params += [Scope.NAMESPACE.value, namespace]
    ids = [int(pk) for pk in webhooks] if webhooks is not None else None
    if not scopes or ids == []:
        return "1 = 0", []
    where = f"w.active AND ({' OR '.join(scopes)}) AND {_event_type_matches()}"
    params += [event_type.name, ALL_EVENTS]
    if ids is not None:
        where += f" AND w.id IN ({', '.join(['%s'] * len(ids))})"
        params += ids
    if not_to is not None:
        where += " AND w.id <> %s"
        params.append(int(not_to))
    return where, params


def subscribers(
    event_type: catalog.EventType,
    user_id=None,
    namespace: str = "",
    audience: tuple[str, ...] | None = None,
) -> list[Webhook]:
    where, params = condition(event_type, user_id, namespace, audience)
    table = Webhook._meta.db_table
    return list(Webhook.objects.raw(f"SELECT w.* FROM {table} AS w WHERE {where}", params))


CHAINED = ("subject", "sequence")  # set, for an ordered webhook, by an event with a subject


@cache
def _defaulted_fields(vendor: str, chained: bool = False) -> tuple:
    """The Delivery fields the statement fills with their defaults (the others it sets)."""
    chosen = {"id", "event", "webhook", "status", "max_attempts", "next_attempt_at"}
    chosen |= {"enqueued_until", "created_at"}
    if chained:
        chosen |= set(CHAINED)
    return tuple(f for f in Delivery._meta.concrete_fields if f.name not in chosen)


def _defaults(chained: bool = False) -> list:
    """Their default values, evaluated per statement (a callable default gives each
    event its own value)."""
    return [
        f.get_db_prep_save(f.get_default(), connection)
        for f in _defaulted_fields(connection.vendor, chained)
    ]


def chain_unfinished(webhook: str, subject: str = "%s") -> str:
    """SQL true when the chain (`webhook`, `subject`) holds an unfinished delivery. Its
    terms are those of the index `delivery_order_chain` (SQLite uses a partial index
    only for a query that repeats its condition)."""
    table = Delivery._meta.db_table
    return (
        f"EXISTS (SELECT 1 FROM {table} AS p WHERE p.webhook_id = {webhook} "
        f"AND p.subject = {subject} AND p.status IN ('{Status.PENDING}', '{Status.HELD}') "
        "AND p.subject IS NOT NULL)"
    )


@lru_cache(maxsize=64)
def _insert_sql(vendor: str, where: str, chained: bool = False) -> str:
    """Once per vendor, subscriber condition (its shape: the values are parameters) and
    whether the event has a subject. With one, an ordered webhook's delivery carries it
    and waits (held) behind an unfinished delivery of the same subject; without one the
    statement is as it always was."""
    names = [f.column for f in _defaulted_fields(vendor, chained)]
    new_id = "gen_random_uuid()" if vendor == "postgresql" else f"{SQLITE_UUID}()"
    own = "id, event_id, webhook_id, status, max_attempts, next_attempt_at, enqueued_until"
    ready, chain_columns, chain_values = "%s", "", ""
    if chained:
        ready = (
            f"CASE WHEN w.ordered AND {chain_unfinished('w.id')} THEN '{Status.HELD}' ELSE %s END"
        )
        chain_columns = ", subject, sequence"
        chain_values = ", CASE WHEN w.ordered THEN %s END, CASE WHEN w.ordered THEN %s END"
    return (
        f"INSERT INTO {Delivery._meta.db_table} ({own}, created_at{chain_columns}, "
        f"{', '.join(names)}) "
        f"SELECT {new_id}, %s, w.id, "
        "CASE WHEN w.payload_filter IS NOT NULL THEN %s "
        f"WHEN w.disabled_at IS NULL THEN {ready} ELSE %s END, %s, "
        f"CASE WHEN w.disabled_at IS NULL THEN %s END, %s, %s{chain_values}"
        f"{', %s' * len(names)} "
        f"FROM {Webhook._meta.db_table} AS w WHERE {where} "
        "RETURNING id, status, webhook_id"
    )


@cache
def _event_sql(vendor: str) -> str:
    fields = Event._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {Event._meta.db_table} ({columns}) VALUES ({marks})"


def _event_insert(event: Event) -> tuple[str, list]:
    """The event's INSERT, as Model.save would write it (without its signals: nothing
    listens to an Event's, and emit() is on the caller's request path)."""
    values = [
        f.get_db_prep_save(f.pre_save(event, True), connection) for f in Event._meta.concrete_fields
    ]
    event._state.adding, event._state.db = False, connection.alias
    return _event_sql(connection.vendor), values


def write(
    event: Event,
    where: tuple[str, list],
    max_attempts: int,
    now: datetime,
    enqueued_until: datetime,
    payload: dict | None = None,
) -> list:
    """Save `event` and one delivery per webhook matching `where` (skipped for a disabled
    one); returns the ids of the pending deliveries. Payload filters match `payload`
    (default: the event's), the whole of it even where the row keeps a preview.

    On PostgreSQL both go in one statement (one round trip: the foreign key is checked
    at commit); SQLite, in-process, takes two on one cursor.
    """
    sql_where, where_params = where
    prep = connection.ops.adapt_datetimefield_value
    subject = event.subject
    chained = subject is not None
    ready = [subject, Status.PENDING.value] if chained else [Status.PENDING.value]
    params = [
        Delivery._meta.get_field("event").get_db_prep_save(event.pk, connection),
        FILTERING,
        *ready,
        Status.SKIPPED.value,
        max_attempts,
        prep(now),
        prep(enqueued_until),
        prep(now),
        *([subject, event.sequence] if chained else []),
        *_defaults(chained),
        *where_params,
    ]
    sql = _insert_sql(connection.vendor, sql_where, chained)
    event_sql, event_params = _event_insert(event)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql, params = f"WITH e AS ({event_sql}) {sql}", [*event_params, *params]
        else:
            cursor.execute(event_sql, event_params)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    to_python = Delivery._meta.pk.to_python  # SQLite hands back the hex text
    pending = [to_python(pk) for pk, status, _ in rows if status == Status.PENDING]
    filtered = {to_python(pk): webhook for pk, status, webhook in rows if status == FILTERING}
    if filtered:  # only when a subscriber has a payload filter: one more look and write
        payload = event.payload if payload is None else payload
        pending += apply_filters(payload, filtered, subject)
    return pending


def apply_filters(payload: dict, filtered: dict, subject: str | None = None) -> list:
    """Deliveries written for webhooks with a payload filter: kept (pending, or skipped
    while the webhook is disabled, or held behind an unfinished delivery of `subject`
    to an ordered webhook) where it matches, deleted where it does not.
    Returns the ids kept pending."""
    # Values, not instances: loading a Webhook decrypts its secrets.
    webhooks = {
        pk: (payload_filter, disabled_at, ordered)
        for pk, payload_filter, disabled_at, ordered in Webhook.objects.filter(
            pk__in=set(filtered.values())
        ).values_list("pk", "payload_filter", "disabled_at", "ordered")
    }
    keep, skip, drop, held = [], [], [], []
    for pk, webhook_id in filtered.items():
        payload_filter, disabled_at, ordered = webhooks[webhook_id]
        if not filters.matches(payload_filter, payload):
            drop.append(pk)
        elif disabled_at is not None:
            skip.append(pk)
        elif ordered and subject is not None and _waits(webhook_id, subject):
            held.append(pk)
        else:
            keep.append(pk)
    _delete_new(drop)
    Delivery.objects.filter(pk__in=skip).update(status=Status.SKIPPED, next_attempt_at=None)
    Delivery.objects.filter(pk__in=held).update(status=Status.HELD)
    Delivery.objects.filter(pk__in=keep).update(status=Status.PENDING)
    return keep


def _waits(webhook_id: int, subject: str) -> bool:
    """An unfinished delivery of `subject` to the webhook goes first."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {chain_unfinished('%s')}", [webhook_id, subject])
        return bool(cursor.fetchone()[0])


def _delete_new(ids: list) -> None:
    """Deliveries written in this very statement's transaction: nothing refers to them
    yet (no attempt, no redelivery), so they go without the ORM's cascade collection."""
    if not ids:
        return
    prep = Delivery._meta.pk.get_db_prep_value
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {Delivery._meta.db_table} WHERE id IN ({marks})",
            [prep(pk, connection) for pk in ids],
        )

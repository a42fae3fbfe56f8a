"""A cursor for the pump's hand-written statements (claims, the attempts' INSERT, the
deliveries' UPDATEs), which run for every batch a worker sends.

On PostgreSQL, Django's cursor is psycopg's `ClientCursor`: it splits the statement
text in Python at every `%s` and quotes every parameter into it. Statements longer
than psycopg's cache limit (4 KiB: a claim of 32 ids with its join, an INSERT of 32
attempts) are split again at every call, which was a quarter of a worker's GIL time
in a drain (py-spy --gil). Here the same statements run on a `RawCursor` of the same
connection, in the same transaction: `$1 … $n` placeholders (numbered once per
statement text) and the parameters sent apart from the text. An INSERT of 32
attempts: 2.2–2.4 → 1.1–1.3 ms of the worker's CPU, 4.4 → 2.3 ms until it returns.

The statements are not prepared on the server: preparing them saved ~3 % of the
workers' CPU in a drain, against statements that fail behind a transaction-mode
pgbouncer and plans cached across a migration.

Timestamps are read by psycopg's own loader (in C) when both Django and the connection
use UTC, as they do unless DATABASES sets a TIME_ZONE: the same values Django's loader
gives (a Python subclass, which psycopg cannot swap for its C version), for a claim
that reads eleven per delivery.

Elsewhere (SQLite) it is Django's own cursor. Either way the cursor is Django's
wrapper: errors are Django's, and the statements are logged and counted as any
other (`CaptureQueriesContext`, `connection.queries`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from functools import cache, lru_cache
from weakref import WeakKeyDictionary

from django.db import connection


@lru_cache(maxsize=4096)
def numbered(sql: str) -> str:
    """`sql` with its `%s` placeholders as `$1 … $n`. Any other `%` is refused: it would
    mean something else to psycopg's own parser than it does here."""
    parts = sql.split("%s")
    if any("%" in part for part in parts):
        raise ValueError(f"A statement for statements.cursor() holds a % besides %s: {sql}")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


class _Numbering:
    """Django's cursor wrapper around a server-binding psycopg cursor, taking `%s`."""

    def __init__(self, wrapped) -> None:
        self.wrapped = wrapped

    def execute(self, sql: str, params: list | tuple = ()) -> None:
        self.wrapped.execute(numbered(sql), params)

    def fetchall(self) -> list[tuple]:
        return self.wrapped.fetchall()

    @property
    def description(self):
        return self.wrapped.description

    @property
    def rowcount(self) -> int:
        return self.wrapped.rowcount


def server_binding() -> bool:
    """PostgreSQL through psycopg 3 (Django's other PostgreSQL driver, psycopg2, has no
    raw cursor: it keeps Django's)."""
    return connection.vendor == "postgresql" and _psycopg3()


@cache
def _psycopg3() -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


@contextmanager
def cursor() -> Iterator:
    """A cursor whose `execute(sql, params)` takes `%s` placeholders on every database."""
    if not server_binding():
        with connection.cursor() as plain:
            yield plain
        return
    connection.ensure_connection()
    wrapped = connection._prepare_cursor(_raw_cursor())  # Django's wrapper: errors, logging
    yield _Numbering(wrapped)


# psycopg connection -> (the time zone it reads in, its raw cursor). A cursor serves one
# statement after another; making one and its loaders anew each time was ~5 % of a
# worker's GIL time. Django's connections are per thread, so each cursor is too.
_raw_cursors: WeakKeyDictionary = WeakKeyDictionary()


def _raw_cursor():
    from psycopg import RawCursor

    pg, wanted = connection.connection, connection.timezone
    held = _raw_cursors.get(pg)
    if held is None or held[0] is not wanted or held[1].closed:
        with connection.wrap_database_errors:
            raw = RawCursor(pg)
        _read_timestamps(raw, wanted)
        _raw_cursors[pg] = held = (wanted, raw)
    return held[1]


def _read_timestamps(raw, wanted) -> None:
    """psycopg's C loader where it gives what Django's would (both in UTC); otherwise
    what Django's `create_cursor` would register for time zone `wanted`."""
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg.pq import Format
    from psycopg.types.datetime import TimestamptzLoader

    if wanted is UTC and raw.connection.info.timezone is UTC:
        raw.adapters.register_loader("timestamptz", TimestamptzLoader)
        return
    oid = raw.adapters.types["timestamptz"].oid
    if getattr(raw.adapters.get_loader(oid, Format.TEXT), "timezone", None) != wanted:
        register_tzloader(wanted, raw)

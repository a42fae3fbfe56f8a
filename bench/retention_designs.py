"""How to expire bodies on PostgreSQL, measured (docs/architecture.md#retention): the
body prune as built (batches of event ids from the partial index) at several batch
sizes, the same statements by created_at ranges instead of id lists, and the
alternative of bodies kept in a table partitioned by day (expiry is a DROP of whole
days; every attempt then writes one more row).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<a scratch database> \\
        python bench/retention_designs.py --rows 1000000

Each design works on its own tenth of the rows (the oldest first), so one fill serves
all. Prints one line per design: rows a second, alone (no drain beside it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import history  # noqa: E402
from hooks.models import Attempt, Delivery, Event, Webhook  # noqa: E402
from hooks.tools import retention  # noqa: E402

SLICE_DAYS = history.DAYS / 10  # a tenth of the rows


def window(j: int):
    """The end of the j-th tenth of the history, oldest first."""
    return FILLED_AT - timedelta(days=history.DAYS - SLICE_DAYS * (j + 1))


def as_built(j: int, batch: int) -> tuple[int, float]:
    start = time.monotonic()
    done = retention.expire_bodies(window(j), batch=batch)
    return done["events"], time.monotonic() - start


def by_time_ranges(j: int, rows: int, batch: int) -> tuple[int, float]:
    """The same statements, each batch a created_at range holding about `batch` events
    (no id list; the pending check is left out, so this is the faster bound)."""
    q = connection.ops.quote_name
    ev, dv, at = (q(m._meta.db_table) for m in (Event, Delivery, Attempt))
    step = timedelta(days=history.DAYS) * batch / rows
    low, end, done = window(j - 1), window(j), 0
    start = time.monotonic()
    while low < end:
        high = min(low + step, end)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {at} SET request_body = '', response_body = '' WHERE delivery_id IN "
                f"(SELECT d.id FROM {dv} d JOIN {ev} e ON e.id = d.event_id "
                f"WHERE e.created_at >= %s AND e.created_at < %s)",
                [low, high],
            )
            cursor.execute(
                f"UPDATE {ev} SET payload = '{{}}', body_expired_at = now() "
                f"WHERE created_at >= %s AND created_at < %s AND body_expired_at IS NULL",
                [low, high],
            )
            done += cursor.rowcount
        low = high
    return done, time.monotonic() - start


def partitioned(rows: int) -> dict[str, float]:
    """Bodies in a table of their own partitioned by day: what writing one attempt more
    costs (one INSERT a transaction, as a worker records attempts), and how long dropping
    nine tenths of the days takes."""
    days = int(history.DAYS)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_body")
        cursor.execute(
            "CREATE TABLE bench_body (attempt_id bigint, started_at timestamptz, "
            "request_body text, response_body text) PARTITION BY RANGE (started_at)"
        )
        for d in range(days + 1):
            lo, hi = FILLED_AT - timedelta(days=days - d), FILLED_AT - timedelta(days=days - d - 1)
            cursor.execute(
                f"CREATE TABLE bench_body_{d} PARTITION OF bench_body FOR VALUES FROM (%s) TO (%s)",
                [lo, hi],
            )
        cursor.execute(
            "INSERT INTO bench_body SELECT id, started_at, request_body, response_body "
            f"FROM {Attempt._meta.db_table} WHERE started_at >= %s",
            [FILLED_AT - timedelta(days=days)],
        )
        cursor.execute("CREATE TABLE bench_plain (LIKE bench_body)")
    single = 2000
    costs = {}
    for table in ("bench_plain", "bench_body"):
        start = time.monotonic()
        for i in range(single):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} VALUES (%s, now() - interval '1 hour', %s, %s)",
                    [i, "x" * 300, "y" * 100],
                )
        costs[table] = (time.monotonic() - start) / single * 1000
    start = time.monotonic()
    with connection.cursor() as cursor:
        for d in range(int(days * 0.9)):
            cursor.execute(f"DROP TABLE bench_body_{d}")
    dropped = time.monotonic() - start
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_body, bench_plain")
    return {"insert_ms_plain": costs["bench_plain"], "insert_ms_partitioned": costs["bench_body"],
            "drop_s": dropped, "drop_rows": rows * 0.9}  # fmt: skip


def main() -> None:
    global FILLED_AT
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("PostgreSQL only: point DATABASE_URL at a scratch database.")
    call_command("migrate", verbosity=0)
    for model in (Attempt, Delivery, Event, Webhook):
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {model._meta.db_table} CASCADE")
    webhook = Webhook.objects.create(name="designs", url="http://127.0.0.1:9/", event_types=["*"])
    FILLED_AT = timezone.now()
    print(
        f"fill: {args.rows:,} rows with bodies in {history.fill_with_bodies(webhook, args.rows):.0f} s"
    )
    tenth = args.rows // 10
    j = 0
    for batch in (100, 500, 2000, 5000):
        count, seconds = as_built(j, batch)
        print(
            f"as built, batch {batch}: {count:,} events in {seconds:.1f} s, {count / seconds:,.0f}/s"
        )
        j += 1
    for batch in (500, 5000):
        count, seconds = by_time_ranges(j, args.rows, batch)
        print(f"created_at ranges of ~{batch}: {count:,} events in {seconds:.1f} s, "
              f"{count / seconds:,.0f}/s")  # fmt: skip
        j += 1
    p = partitioned(tenth * 10)
    print(f"partitioned by day: an attempt's body INSERT {p['insert_ms_partitioned']:.3f} ms "
          f"against {p['insert_ms_plain']:.3f} ms in a plain table; dropping 90 % of the days "
          f"({p['drop_rows']:,.0f} rows) {p['drop_s']:.2f} s")  # fmt: skip
    start = time.monotonic()
    gone = retention.prune(window(j - 1))
    print(f"metadata prune (DELETE by id, batch 500) of {gone['events']:,} events: "
          f"{gone['events'] / (time.monotonic() - start):,.0f}/s")  # fmt: skip


FILLED_AT = timezone.now()

if __name__ == "__main__":
    main()

"""The big-history measure: the same pages, commands, scrape and drain on empty tables
and with a million old deliveries and their attempts written by SQL in seconds, and a
prune of the old nine tenths while a drain runs. Imported by scenarios.py once Django
is set up."""

from __future__ import annotations

import io
import statistics
import sys
import threading
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, models
from django.test import Client
from django.utils import timezone

from hooks.models import Attempt, Delivery, Event, Webhook
from hooks.tools import retention

DAYS = 40  # the history spans this many days; the prune keeps the last tenth


def _sql_rows(model: type[models.Model], count: int, overrides: dict[str, str]) -> tuple[str, list]:
    """INSERT … SELECT of `count` rows numbered i = 1..count: `overrides` give a column's
    SQL expression in i, every other column gets its field's default as a parameter."""
    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.name in overrides:
            values.append(overrides[field.name])
        else:
            values.append("%s")
            default = None if field.null and not field.has_default() else field.get_default()
            params.append(field.get_db_prep_save(default, connection))
    if connection.vendor == "postgresql":
        series = f"generate_series(1, {count}) AS s(i)"
    else:
        series = (f"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                  f"WHERE i < {count}) SELECT i FROM n) AS s")  # fmt: skip
    table = connection.ops.quote_name(model._meta.db_table)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {series}",
        params,
    )


def _uuid(offset: int) -> str:
    """A distinct UUID per row i, as each database stores UUIDs."""
    if connection.vendor == "postgresql":
        return f"lpad(to_hex(i + {offset}), 32, '0')::uuid"
    return f"printf('%%032x', i + {offset})"


def _created(now) -> str:
    """Spread over DAYS days before `now`, oldest first."""
    span = DAYS * 86400
    if connection.vendor == "postgresql":
        return f"TIMESTAMPTZ '{now.isoformat()}' - ((%(n)s - i) * {span}.0 / %(n)s) * INTERVAL '1 second'"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', '{now:%Y-%m-%d %H:%M:%S}', '-' || ((%(n)s - i) * {span}.0 / %(n)s) || ' seconds')"


# What the rows hold, by their number i, as a history looks (most succeeded; about 2 %
# failed with a 500 or a 503, 0.2 % with no answer; 1 % of a rare event type), so each
# search filter finds what it would find in one. (`%%`: SQL run with parameters.)
STATUS_SQL = "CASE WHEN i %% 100 IN (7, 57) OR i %% 500 = 3 THEN 'failed' ELSE 'succeeded' END"
RESPONSE_SQL = ("CASE WHEN i %% 100 = 7 THEN 500 WHEN i %% 100 = 57 THEN 503 "
                "WHEN i %% 500 = 3 THEN NULL ELSE 200 END")  # fmt: skip
TYPE_SQL = "CASE WHEN i %% 100 = 11 THEN 'bench.rare' ELSE 'bench.event' END"
RARE_TYPE = "bench.rare"


def fill(webhook: Webhook, count: int, other: Webhook | None = None, first: int = 0) -> float:
    """`count` deliveries of `webhook` (every third of `other`, when given), one event
    and one attempt each, written by SQL; returns the seconds it took. `first`: how many
    rows earlier fills wrote (their ids are not used again)."""
    start = time.monotonic()
    now = timezone.now()
    created = _created(now).replace("%(n)s", str(count))
    ev, dv = first, (1 << 40) + first
    base = Attempt.objects.aggregate(top=models.Max("id"))["top"] or 0  # after the drains'
    owner = str(webhook.pk) if other is None else (
        f"CASE WHEN i %% 3 = 0 THEN {other.pk} ELSE {webhook.pk} END")  # fmt: skip
    ok = f"({RESPONSE_SQL}) = 200"
    if connection.vendor != "postgresql":
        ok = f"CASE WHEN {ok} THEN 1 ELSE 0 END"
    plan = [
        (Event, {"id": _uuid(ev), "type": TYPE_SQL, "created_at": created}),
        (Delivery, {"id": _uuid(dv), "event": _uuid(ev), "webhook": owner,
                    "status": STATUS_SQL, "attempts": "1", "created_at": created,
                    "completed_at": created, "last_response_status": RESPONSE_SQL}),
        (Attempt, {"id": f"i + {base}", "delivery": _uuid(dv), "number": "1", "started_at": created,
                   "url": f"'{webhook.url}'", "response_status": RESPONSE_SQL,
                   "succeeded": f"COALESCE({ok}, {'FALSE' if connection.vendor == 'postgresql' else '0'})",
                   "duration_ms": "3.5"}),
    ]  # fmt: skip
    _write(plan, count, base)
    return time.monotonic() - start


def _write(plan: list, count: int, base: int) -> None:
    """Each model's `count` rows as `plan` says (`_sql_rows`), then the statistics a
    database would have after such inserts; the attempts' id sequence moved past them."""
    with connection.cursor() as cursor:
        for model, overrides in plan:
            sql, params = _sql_rows(model, count, overrides)
            cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            for model in (Event, Delivery, Attempt):  # as autovacuum does after inserts
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{Attempt._meta.db_table}', 'id'), "
                f"{base + count})"
            )
        else:
            cursor.execute("ANALYZE")


def _admin_user():
    User = get_user_model()
    return User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench@example.com", "pw"
    )


def _admin() -> Client:
    user = _admin_user()
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def page_times(webhook: Webhook, repeat: int) -> dict[str, float]:
    """Median seconds of each page, command and scrape (after one warm-up each)."""
    client = _admin()
    views = {
        "delivery_list": lambda: client.get("/admin/hooks/delivery/"),
        "webhook_history": lambda: client.get(f"/admin/hooks/delivery/?webhook__id__exact={webhook.pk}"),
        "dashboard": lambda: client.get("/admin/dashboard/"),
        "status_command": lambda: call_command("webhooks", "status", stdout=io.StringIO()),
        "metrics": lambda: client.get("/metrics", REMOTE_ADDR="127.0.0.1"),
    }  # fmt: skip
    times = {}
    for name, view in views.items():
        answer = view()
        status = getattr(answer, "status_code", 200)
        if status != 200:
            raise RuntimeError(f"{name} answered {status}")
        runs = []
        for _ in range(repeat):
            start = time.monotonic()
            view()
            runs.append(time.monotonic() - start)
        times[name] = statistics.median(runs)
    return times


def prune_during(drain, older_than) -> tuple[float, dict, float]:
    """The drain's rate while a prune runs beside it; what the prune deleted, and in how
    long (it may go on after the drain)."""
    done: dict = {}

    def prune() -> None:
        start = time.monotonic()
        try:
            done.update(retention.prune(older_than))
        finally:
            done["seconds"] = time.monotonic() - start
            connection.close()

    thread = threading.Thread(target=prune)
    thread.start()
    rate = drain()
    thread.join()
    return rate, done, done.pop("seconds")


def measure(fresh, drain, count: int, repeat: int) -> dict:
    """`fresh()` empties the tables and returns a webhook to the fast receiver; `drain()`
    returns a drain's deliveries/s on the tables as they are."""
    webhook = fresh()
    # First the drains, so the "small" tables hold a page's worth of their deliveries
    # (an empty list renders nothing, which is no fair baseline for a page of rows).
    empty_drain = max(drain() for _ in range(repeat))
    empty = page_times(webhook, repeat)
    filled = fill(webhook, count)
    big = page_times(webhook, repeat)
    big_drain = max(drain() for _ in range(repeat))
    cut = timezone.now() - timedelta(days=DAYS / 10)  # nine tenths are older
    during, pruned, prune_seconds = prune_during(drain, cut)
    return {
        "history_rows": count, "history_fill_s": filled, "history_empty": empty,
        "history_big": big, "history_drain_empty": empty_drain, "history_drain_big": big_drain,
        "history_drain_pruning": during, "history_pruned": pruned,
        "history_prune_s": prune_seconds,
    }  # fmt: skip


# --- searches (hooks.tools.search) -------------------------------------------------------
def _api_client() -> tuple[Client, dict]:
    from accounts.models import ApiToken

    user = _admin_user()
    raw = ApiToken.issue(user, f"bench {ApiToken.objects.count()}")[1]
    return Client(HTTP_HOST="localhost"), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def search_cases(webhook: Webhook) -> dict[str, str]:
    """Each search as a person makes it, by its address: the admin's search page and the
    management API, every filter kind, and lookups by a webhook-id and an event id (the
    newest delivery's, or a made-up one on empty tables)."""
    now = timezone.now()

    def at(hours: float) -> str:
        return (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S")

    newest = Delivery.objects.order_by("-created_at").values_list("pk", "event_id").first()
    delivery_id, event_id = newest or ("00000000-0000-0000-0000-000000000001",) * 2
    hook = f"/api/v1/webhooks/{webhook.pk}/deliveries"
    admin = "/admin/hooks/delivery/search/"
    return {
        "search_failed_webhook_yesterday": f"{hook}?status=failed&since={at(48)}&until={at(24)}",
        "search_500_since": f"{admin}?response_status=500&since={at(10)}",
        "search_failed": f"{admin}?status=failed",
        "search_5xx_all": "/api/v1/deliveries?response_status=5xx",
        "search_no_answer": f"{hook}?response_status=none",
        "search_event_type": f"{hook}?event_type={RARE_TYPE}",
        "search_period": f"{admin}?since={at(24 * 12)}&until={at(24 * 11)}",
        "search_webhook_id": f"/api/v1/deliveries?q={delivery_id}",
        "search_event_id": f"{admin}?q={event_id}",
    }


def _p95(runs: list[float]) -> float:
    return statistics.quantiles(runs, n=20, method="inclusive")[18]


def search_times(webhook: Webhook, runs: int) -> dict[str, float]:
    """p95 seconds of each search (after one warm-up each), and the 7-day dashboard's."""
    client, auth = _api_client()
    admin = _admin()
    times = {}
    cases = {**search_cases(webhook), "dashboard_7d": "/admin/dashboard/?period=7d"}
    for name, url in cases.items():
        get = (lambda u=url: client.get(u, **auth)) if url.startswith("/api/") else (
            lambda u=url: admin.get(u))  # fmt: skip
        answer = get()
        if answer.status_code != 200:
            raise RuntimeError(f"{name} answered {answer.status_code}: {answer.content[:300]!r}")
        spent = []
        for _ in range(runs):
            start = time.monotonic()
            get()
            spent.append(time.monotonic() - start)
        times[name] = _p95(spent)
    return times


SMALL_HISTORY = 1_000  # the baseline: a page of rows to render, as a new hub has


def measure_search(fresh, counts: list[int], runs: int) -> dict:
    """The searches and the 7-day dashboard on a small history (SMALL_HISTORY rows: on
    empty tables a search renders no row, which is no fair baseline for a page of them),
    then after each fill up to the row counts in `counts` (a million, then ten on
    PostgreSQL)."""
    webhook = fresh()
    other = Webhook.objects.create(name="bench-other", url=webhook.url, active=False,
                                   event_types=[])  # fmt: skip
    fill(webhook, SMALL_HISTORY, other)
    result = {"search_small": search_times(webhook, runs), "search_filled": []}
    written = SMALL_HISTORY
    for count in counts:
        seconds = fill(webhook, count - written, other, first=written)
        written = count
        result["search_filled"].append(
            {"rows": count, "fill_s": seconds, "times": search_times(webhook, runs)}
        )
    return result


# --- retention in two periods: bodies, then the rest ------------------------------------
# (its own fill and measure, beside the big-history one above)

PAD = 200  # digits of padding in each body: payloads and answers of a few hundred bytes


def _bodies() -> dict[str, str]:
    """SQL expressions in i of an event's payload and its attempt's request and response
    bodies, as real deliveries have them (a few hundred bytes each)."""
    if connection.vendor == "postgresql":
        pad = f"lpad(i::text, {PAD}, '0')"
        payload = f"jsonb_build_object('seq', i, 'text', {pad})"
    else:
        pad = f"printf('%%0{PAD}d', i)"
        payload = f"json_object('seq', i, 'text', {pad})"
    return {
        "payload": payload,
        "request_body": f"'{{\"seq\": ' || i || ', \"text\": \"' || {pad} || '\"}}'",
        "response_body": f"'{{\"received\": ' || i || ', \"note\": \"' || {pad} || '\"}}'",
    }


def fill_with_bodies(webhook: Webhook, count: int) -> float:
    """`count` succeeded deliveries of `webhook` as `fill()` writes them, each event with
    a payload and each attempt with its request and response bodies; returns seconds."""
    start = time.monotonic()
    now = timezone.now()
    created = _created(now).replace("%(n)s", str(count))
    ev, dv = 0, 1 << 40
    bodies = _bodies()
    true = "TRUE" if connection.vendor == "postgresql" else "1"
    base = Attempt.objects.aggregate(top=models.Max("id"))["top"] or 0
    plan = [
        (Event, {"id": _uuid(ev), "type": "'bench.event'", "created_at": created,
                 "payload": bodies["payload"]}),
        (Delivery, {"id": _uuid(dv), "event": _uuid(ev), "webhook": str(webhook.pk),
                    "status": "'succeeded'", "attempts": "1", "created_at": created,
                    "completed_at": created, "last_response_status": "200"}),
        (Attempt, {"id": f"i + {base}", "delivery": _uuid(dv), "number": "1", "started_at": created,
                   "url": f"'{webhook.url}'", "response_status": "200", "succeeded": true,
                   "duration_ms": "3.5", "request_body": bodies["request_body"],
                   "response_body": bodies["response_body"]}),
    ]  # fmt: skip
    _write(plan, count, base)
    return time.monotonic() - start


def _say(line: str) -> None:
    """A long measure's progress, on stderr (the results line is stdout's)."""
    print(line, file=sys.stderr, flush=True)


def beside_drain(drain, work, repeat: int = 1) -> tuple[float, dict, float]:
    """The drain's best rate while `work()` runs in a thread beside it (of up to `repeat`
    drains, the first always, the others only if `work()` was still running when they
    ended); what `work()` returned, and how long it took (it may go on after)."""
    done: dict = {}

    def run() -> None:
        start = time.monotonic()
        try:
            done.update(work())
        finally:
            done["seconds"] = time.monotonic() - start
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    rates = [drain()]
    while thread.is_alive() and len(rates) < repeat:
        rate = drain()
        if thread.is_alive():
            rates.append(rate)
    thread.join()
    return max(rates), done, done.pop("seconds")


def measure_retention(fresh, drain, count: int, repeat: int) -> dict:
    """Bodies, then the rest, of the old nine tenths of `count` deliveries, each beside
    drains (the best of `repeat`), against the drain alone on the same tables (the best
    of `repeat`)."""
    webhook = fresh()
    filled = fill_with_bodies(webhook, count)
    _say(f"retention: {count:,} rows written in {filled:.0f} s")
    alone = max(drain() for _ in range(repeat))
    cut = timezone.now() - timedelta(days=DAYS / 10)  # nine tenths are older
    expire, prune = (lambda: retention.expire_bodies(cut)), (lambda: retention.prune(cut))
    body_rate, emptied, body_s = beside_drain(drain, expire, repeat)
    _say(f"retention: drain alone {alone:.0f}/s; beside the body prune {body_rate:.0f}/s; "
         f"{emptied} in {body_s:.0f} s")  # fmt: skip
    prune_rate, pruned, prune_s = beside_drain(drain, prune, repeat)
    return {
        "retention_rows": count, "retention_fill_s": filled, "retention_drain": alone,
        "retention_drain_bodies": body_rate, "retention_emptied": emptied,
        "retention_bodies_s": body_s, "retention_drain_prune": prune_rate,
        "retention_pruned": pruned, "retention_prune_s": prune_s,
    }  # fmt: skip

"""The benchmark: `python bench/run.py` (or `make bench`).

Runs bench/scenarios.py once per configuration (SQLite + ORM broker; PostgreSQL +
Redis when reachable) and prints a table of ratios measured in the same run.
`--quick` is the small smoke run the test suite uses.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = {
    "sqlite": {"DATABASE_URL": f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}", "REDIS_URL": ""},
    "postgres": {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/webhookhub_bench",
        "REDIS_URL": "redis://127.0.0.1:6379/14",
    },
}


def postgres_ready() -> bool:
    try:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            if not c.execute(
                "SELECT 1 FROM pg_database WHERE datname = 'webhookhub_bench'"
            ).fetchone():
                c.execute("CREATE DATABASE webhookhub_bench")
        import redis

        redis.Redis.from_url(CONFIGS["postgres"]["REDIS_URL"]).ping()
        return True
    except Exception as exc:  # the service is not there: say so, run the rest
        print(f"(skipping PostgreSQL + Redis: {exc})", file=sys.stderr)
        return False


def measure(config: str, n: int, repeat: int, quick: bool, only: list[str] | None = None) -> dict:
    env = {**os.environ, **CONFIGS[config], "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    args = [
        sys.executable,
        str(ROOT / "bench" / "scenarios.py"),
        "--n",
        str(n),
        "--repeat",
        str(repeat),
    ]
    if quick:
        args.append("--quick")
    if only:
        args += ["--only", *only]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULTS "):
            return json.loads(line[len("RESULTS ") :])
    raise SystemExit(f"{config}: the benchmark failed\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    """(measure, value, ratio, target)."""
    if "hub_fast" not in r:  # --only: the rows of what ran
        return [*(history_rows(r) if "history_big" in r else []),
                *(search_rows(r) if "search_small" in r else [])]  # fmt: skip
    lat = r["latency"]
    cpu = r["cpu_split"]
    emit_extra_ms = 1000 / r["emit_rate"] - 1000 / r["plain_rate"]
    return [
        ("drain, fast receiver (deliveries/s)", f"{r['hub_fast']:.0f}", "", ""),
        ("  vs the limit (1-process urllib3 loop)", f"{r['limit_fast']:.0f}", f"{r['hub_fast'] / r['limit_fast']:.2f}×", "≥ 0.5×; issue 18: ≥ 1.0×"),
        ("  vs a 1-process http.client loop (stdlib)", f"{r['raw_fast']:.0f}", f"{r['hub_fast'] / r['raw_fast']:.2f}×", ""),
        ("  vs the usual way (task per delivery)", f"{r['usual_fast']:.0f}", f"{r['hub_fast'] / r['usual_fast']:.1f}×", "≥ 2×"),
        ("  CPU a delivery (ms): workers / database + broker servers / receiver", " / ".join(f"{cpu[k]:.2f}" for k in ("workers", "services", "receiver")),
         f"{sum(cpu.values()):.2f} ms in all", ""),
        ("drain, 50 ms receiver (deliveries/s)", f"{r['hub_slow']:.0f}", "", ""),
        ("  vs the limit (32 threads)", f"{r['limit_slow']:.0f}", f"{r['hub_slow'] / r['limit_slow']:.2f}×", "≥ 0.8×"),
        ("  vs the usual way", f"{r['usual_slow']:.0f}", f"{r['hub_slow'] / r['usual_slow']:.1f}×", "≥ 5×"),
        ("two qclusters on one database and broker, 2 workers each (half this machine), 50 ms receiver (deliveries/s)",
         f"{r['scale_half_two']:.0f}", f"{r['scale_half_two'] / r['scale_half_one']:.2f}× one ({r['scale_half_one']:.0f}/s)", "≥ 1.3×"),
        ("  two full-size qclusters (4 workers each) on these 2 cores", f"{r['scale_two']:.0f}",
         f"{r['scale_two'] / r['scale_one']:.2f}× one ({r['scale_one']:.0f}/s)", "CPU-bound here"),
        ("  deliveries that arrived twice (all runs)", f"{r['scale_duplicates']}", "", "0"),
        ("isolation: healthy with 10 of 100 dead (deliveries/s)", f"{r['isolation_healthy']:.0f}",
         f"{r['isolation_healthy'] / r['isolation_all']:.2f}×", "≥ 0.8× all-healthy"),
        ("  all healthy (deliveries/s)", f"{r['isolation_all']:.0f}", "", ""),
        ("  each round: with dead / all healthy", " · ".join(f"{a} / {b}" for a, b in r["isolation_runs"]), "", ""),
        ("fan-out: one event to many webhooks (deliveries/s)", f"{r['fanout']:.0f}", "", ""),
        ("emit() with 3 subscribers (events/s)", f"{r['emit_rate']:.0f}", f"{r['emit_rate'] / r['plain_rate']:.2f}×", ""),
        ("  plain insert of one row (events/s)", f"{r['plain_rate']:.0f}", f"+{emit_extra_ms:.2f} ms", "≤ +1.0 ms SQLite, ≤ +1.5 ms PostgreSQL"),
        ("  one of the 3 with a payload filter (events/s)", f"{r['emit_filtered']:.0f}",
         f"+{1000 / r['emit_filtered'] - 1000 / r['emit_rate']:.2f} ms", "costs only when used"),
        ("  each about a job (its subject), one of the 3 ordered (events/s)", f"{r['emit_subject']:.0f}",
         f"+{1000 / r['emit_subject'] - 1000 / r['plain_rate']:.2f} ms over the plain insert",
         "≤ +1.0 ms SQLite, ≤ +1.5 ms PostgreSQL"),
        ("latency committed → received p50 / p99 (ms), 20 events/s", f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}",
         f"raw RTT {lat['rtt_ms']:.2f} ms", "≤ 20 / ≤ 100 ms"),
        ("  at 200 events/s", f"{r['latency_200']['p50_ms']:.1f} / {r['latency_200']['p99_ms']:.1f}", "", "≤ 20 / ≤ 100 ms"),
        ("retries: first attempt after its due time p50 / p99 (ms), 500 due over 10 s",
         f"{r['retries']['p50_ms']:.0f} / {r['retries']['p99_ms']:.0f}",
         f"{r['retries']['early']} early", "p99 ≤ 1000 ms, none early"),
        ("worker RSS at 20 % / at the end (MB)", f"{r['rss_early_mb']:.0f} / {r['rss_end_mb']:.0f}",
         f"{r['rss_end_mb'] / max(r['rss_early_mb'], 1):.2f}×", "flat"),
        ("peak worker RSS (MB)", f"{r['peak_mb']:.0f}", "", ""),
        ("request with no route events (requests/s)", f"{r['route_none']:.0f}", "", ""),
        ("  with 20 route events it does not match", f"{r['route_unmatched']:.0f}",
         f"{r['route_unmatched'] / r['route_none']:.2f}×", "≥ 0.95×"),
        ("  matching one (its event written)", f"{r['route_matched']:.0f}",
         f"{r['route_matched'] / r['route_none']:.2f}×", ""),
        *history_rows(r),
        *search_rows(r),
        *retention_rows(r),
        *big_job_rows(r),
        *remote_worker_rows(r),
        *pacing_rows(r),
        *order_rows(r),
        ("CPU time stolen by the hypervisor during the run", f"{r['stolen_pct']:.1f} %", "", ""),
    ]  # fmt: skip


def pacing_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """A webhook paced to 1 request/s (hooks.worker.pacing) beside an unpaced drain."""
    off = 100 * (r["pacing_rate"] - 1.0)
    return [
        (f"pacing: a 1 request/s webhook over {r['pacing_seconds']:g} s, two qclusters (requests/s)",
         f"{r['pacing_rate']:.3f}", f"{off:+.1f} %", "within ±5 %"),
        ("  the other webhook's drain beside it (deliveries/s)", f"{r['pacing_other']:.0f}",
         f"{r['pacing_other'] / r['pacing_unpaced']:.2f}× unpaced ({r['pacing_unpaced']:.0f}/s)", "≥ 0.9×"),
    ]  # fmt: skip


def big_job_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The big-job measure (bench/bigjob.py): a job of RunPod's /run payload limit."""
    idle, peak = r["big_job_idle_mb"], r["big_job_peak_mb"]
    parts = ("web", "jobs", "deliveries")
    return [
        (f"a {r['big_job_mb']:.0f} MB job round trip: POST /run → its callback (both, "
         f"{2 * r['big_job_mb']:.0f} MB) received (s)", f"{r['big_job_s']:.2f}",
         f"/run answered in {r['big_job_run_s']:.2f} s", ""),
        ("  peak RSS web / jobs / deliveries, largest process of each (MB)",
         " / ".join(f"{peak[p]:.0f}" for p in parts),
         "idle " + " / ".join(f"{idle[p]:.0f}" for p in parts), ""),
    ]  # fmt: skip


def remote_worker_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The remote-workers measure (bench/workers.py)."""
    tps = r["remote_idle_tps"]
    low, high = r["remote_burst_spread"]
    return [
        (f"{r['remote_workers']} idle runpod-python workers polling (SDK's rates): web server CPU",
         f"{r['remote_idle_cpu_pct']:.1f} % of a core",
         f"{r['remote_idle_asks']:.0f} takes/s", "small"),
        ("  database transactions/s while they poll", "n/a (SQLite)" if tps is None else f"{tps:.0f}",
         "", "small"),
        (f"  a burst of {r['remote_burst_jobs']:,} jobs, all done by them (s)", f"{r['remote_burst_s']:.1f}",
         f"{r['remote_burst_jobs'] / r['remote_burst_s']:.0f} jobs/s; {low}–{high} a worker", ""),
        ("  jobs handed out twice", f"{r['remote_burst_twice']}", "", "0"),
    ]  # fmt: skip


def order_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """Order per subject (hooks/worker/order.py) through random failures."""
    ordered, unordered = r["order_rate"], r["order_unordered_rate"]
    return [
        (f"order per subject: {r['order_jobs']:,} jobs × 4 states to a receiver failing 5 % "
         "at random, ordered webhook (deliveries/s)", f"{ordered:.0f}",
         f"{ordered / unordered:.2f}× unordered ({unordered:.0f}/s)", "≥ 0.8×"),
        ("  arrived out of order per subject: ordered / unordered (all runs)",
         f"{r['order_out_of_order']} / {r['order_unordered_out_of_order']}", "", "0 ordered"),
    ]  # fmt: skip


PAGES = [("delivery_list", "admin delivery list"), ("webhook_history", "a webhook's history (admin, filtered)"),
         ("dashboard", "dashboard"), ("status_command", "webhooks status"), ("metrics", "/metrics scrape")]  # fmt: skip


def history_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The big-history measure (bench/history.py): small tables against a million rows."""
    small, big = r["history_empty"], r["history_big"]
    pruned = r["history_pruned"]
    rows_ = [
        (f"big history: {r['history_rows']:,} deliveries + attempts (written by SQL)",
         f"{r['history_fill_s']:.0f} s to write", "", ""),
        ("  drain to the fast receiver (deliveries/s)", f"{r['history_drain_big']:.0f}",
         f"{r['history_drain_big'] / r['history_drain_empty']:.2f}× small ({r['history_drain_empty']:.0f}/s)", "≥ 0.9×"),
    ]  # fmt: skip
    for key, label in PAGES:
        target = "≤ 3×" + (", ≤ 200 ms" if key == "metrics" else "")
        rows_.append((f"  {label} (ms)", f"{big[key] * 1000:.0f}",
                      f"{big[key] / small[key]:.2f}× small ({small[key] * 1000:.0f} ms)", target))  # fmt: skip
    rows_.append(
        (f"  prune of {pruned['events']:,} old events ({pruned['deliveries']:,} deliveries, "
         f"{pruned['attempts']:,} attempts) beside a drain",
         f"{r['history_drain_pruning']:.0f}/s drain, prune {r['history_prune_s']:.0f} s",
         f"{r['history_drain_pruning'] / r['history_drain_big']:.2f}× the drain alone", "≥ 0.8×")
    )  # fmt: skip
    return rows_


SEARCHES = [
    ("search_failed_webhook_yesterday", "a webhook's failed deliveries of yesterday (API)"),
    ("search_500_since", "every 500 of the last 10 hours (admin)"),
    ("search_failed", "every failed delivery, newest first (admin)"),
    ("search_5xx_all", "every 5xx of the caller's webhooks (API)"),
    ("search_no_answer", "a webhook's deliveries with no answer (API)"),
    ("search_event_type", "a webhook's deliveries of a rare event type (API)"),
    ("search_period", "one day 11 days ago (admin)"),
    ("search_webhook_id", "by webhook-id (API, all webhooks)"),
    ("search_event_id", "by event id (admin)"),
]  # fmt: skip


def search_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The history's searches (bench/history.py measure_search), p95 of 20 each: on a
    small history (1,000 rows), at a million rows (≤ 3× small) and at ten million on
    PostgreSQL (≤ 200 ms); the 7-day dashboard ≤ 3× small at a million."""
    empty = r["search_small"]
    out = []
    for filled in r["search_filled"]:
        big, count = filled["times"], filled["rows"]
        target = "≤ 200 ms" if count >= 10_000_000 else "≤ 3×"
        out.append((f"history search at {count:,} deliveries (p95 ms; written by SQL)",
                    f"{filled['fill_s']:.0f} s to write", "", ""))  # fmt: skip
        for key, label in SEARCHES:
            out.append((f"  {label}", f"{big[key] * 1000:.0f}",
                        f"{big[key] / empty[key]:.2f}× small ({empty[key] * 1000:.0f} ms)", target))  # fmt: skip
        out.append(("  dashboard, 7 days", f"{big['dashboard_7d'] * 1000:.0f}",
                    f"{big['dashboard_7d'] / empty['dashboard_7d']:.2f}× small "
                    f"({empty['dashboard_7d'] * 1000:.0f} ms)", "≤ 3× at 1M"))  # fmt: skip
    return out


def retention_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The retention measure (bench/history.py): bodies, then the rest, of nine tenths."""
    if "retention_rows" not in r:  # a run of other measures (--only)
        return []
    drain, emptied, pruned = r["retention_drain"], r["retention_emptied"], r["retention_pruned"]
    return [
        (f"retention: {r['retention_rows']:,} deliveries + attempts with bodies (written by SQL)",
         f"{r['retention_fill_s']:.0f} s to write", f"drain alone {drain:.0f}/s", ""),
        (f"  bodies of {emptied['events']:,} old events ({emptied['attempts']:,} attempts) "
         "emptied beside a drain",
         f"{r['retention_drain_bodies']:.0f}/s drain, {r['retention_bodies_s']:.0f} s "
         f"({emptied['events'] / max(r['retention_bodies_s'], 1e-9):,.0f} events/s)",
         f"{r['retention_drain_bodies'] / drain:.2f}× the drain alone", "≥ 0.8×"),
        (f"  prune of {pruned['events']:,} old events ({pruned['deliveries']:,} deliveries, "
         f"{pruned['attempts']:,} attempts) beside a drain",
         f"{r['retention_drain_prune']:.0f}/s drain, prune {r['retention_prune_s']:.0f} s "
         f"({pruned['events'] / max(r['retention_prune_s'], 1e-9):,.0f} events/s)",
         f"{r['retention_drain_prune'] / drain:.2f}× the drain alone", "≥ 0.8×"),
    ]  # fmt: skip


def table(results: dict[str, dict]) -> str:
    lines = []
    for config, r in results.items():
        lines.append(f"\n### {config} ({r['config']}; n={r['n']}, best of {r['repeat']})\n")
        lines.append("| measure | value | ratio | target |")
        lines.append("|---|---|---|---|")
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(r)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000, help="deliveries per drain (default 5000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure; the best counts")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--only", nargs="*", help="only these measures (history, search, …)")
    args = parser.parse_args()
    configs = list(CONFIGS) if args.config == "all" else [args.config]
    for path in (ROOT / "var").glob("bench.sqlite3*"):
        path.unlink()  # throwaway: start from a fresh schema
    if "postgres" in configs and not postgres_ready():
        configs.remove("postgres")
    results = {config: measure(config, args.n, args.repeat, args.quick, args.only)
               for config in configs}  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    main()

"""A small run of the benchmark, so it cannot rot (its numbers are not judged here)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_benchmark_smoke_run_prints_every_measure():
    out = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--n", "200", "--repeat", "1", "--config", "sqlite"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    table = out.stdout
    for measure in (
        "drain, fast receiver", "vs the limit", "CPU a delivery (ms)", "http.client loop", "vs the usual way", "drain, 50 ms receiver",
        "isolation", "each round", "fan-out", "emit()", "latency", "worker RSS", "peak worker RSS",
        "stolen by the hypervisor", "no route events", "route events it does not match",
        "matching one", "at 200 events/s", "retries: first attempt after its due time", "with a payload filter", "two qclusters on one database", "two full-size qclusters", "arrived twice",
        "MB job round trip", "peak RSS web / jobs / deliveries", "idle runpod-python workers",
        "database transactions/s while they poll", "jobs, all done by them", "jobs handed out twice",
        "pacing: a 1 request/s webhook", "the other webhook's drain beside it", "history search at",
        "failed deliveries of yesterday", "by webhook-id", "by event id", "dashboard, 7 days",
        "each about a job (its subject)", "order per subject: 50 jobs × 4 states",
        "arrived out of order per subject", "retention:", "emptied beside a drain",
    ):  # fmt: skip
        assert measure in table, measure
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 61  # header + 60 measures
    # Every value measured; SQLite keeps no count of transactions to read.
    unmeasurable = "database transactions/s"
    assert all(re.search(r"\d", row.split("|")[2]) for row in rows[1:] if unmeasurable not in row)

"""Fault injection: `python bench/faults.py` (or `make faults`).

Injects each fault into a running hub made of real processes (`manage.py qcluster`,
`runjobs`) with a real receiver, and counts at the receiver what was delivered, lost
and duplicated (a duplicate is the same `webhook-id` twice; an event under two ids
would be a worse bug, and is counted too). The embedded configuration uses SQLite and
the ORM broker; the scaled-out one a PostgreSQL and a Redis of its own, on their own
ports, so they can be restarted and stopped without touching anything else.

`--only NAME …` runs some scenarios; `--config sqlite|postgres` one configuration.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENT = "faults.event"


# --- the driver: services of our own, one process per configuration ---------------
def _as_postgres(command: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def free_port() -> int:
    """A port nothing listens on now: a fixed one may be held by a run that was killed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pg_port() -> int:
    return int(os.environ["FAULTS_PG_PORT"])


def redis_port() -> int:
    return int(os.environ["FAULTS_REDIS_PORT"])


class Services:
    """A throwaway PostgreSQL and Redis on free ports, told to the scenarios by env()."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="webhookhub-faults-"))
        os.environ["FAULTS_PG_PORT"] = str(free_port())
        os.environ["FAULTS_REDIS_PORT"] = str(free_port())
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        self.pg_bin = Path(bins[-1]) if bins else Path(shutil.which("pg_ctl") or "pg_ctl").parent
        self.pg_data = self.dir / "pg"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        subprocess.run(
            _as_postgres([str(self.pg_bin / "initdb"), "-D", str(self.pg_data), "-A", "trust",
                          "-U", "postgres", "--no-sync"]),
            check=True, capture_output=True, cwd=self.dir,
        )  # fmt: skip
        pg_ctl(self.env(), "start")
        subprocess.run(
            [str(self.pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port()), "-U",
             "postgres", "faults"], check=True,
        )  # fmt: skip
        redis("start")

    def env(self) -> dict[str, str]:
        return {
            "FAULTS_PG_BIN": str(self.pg_bin),
            "FAULTS_PG_DATA": str(self.pg_data),
            "FAULTS_PG_PORT": str(pg_port()),
            "FAULTS_REDIS_PORT": str(redis_port()),
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port()}/faults",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port()}/0",
        }

    def close(self) -> None:
        redis("stop")
        pg_ctl(self.env(), "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_ctl(env: dict, action: str) -> None:
    home = Path(env["FAULTS_PG_DATA"]).parent
    command = [str(Path(env["FAULTS_PG_BIN"]) / "pg_ctl"), "-D", env["FAULTS_PG_DATA"], "-w",
               "-l", str(home / "pg.log")]  # fmt: skip
    if action in ("start", "restart"):
        command += ["-o", f"-p {env['FAULTS_PG_PORT']} -c listen_addresses=127.0.0.1 "
                          f"-c fsync=off -k {home}"]  # fmt: skip
    if action in ("stop", "restart"):
        command += ["-m", "fast"]
    done = subprocess.run(
        _as_postgres([*command, action]), capture_output=True, text=True, cwd=home
    )
    if done.returncode:
        log = (
            (home / "pg.log").read_text(errors="replace")[-2000:]
            if (home / "pg.log").exists()
            else ""
        )
        raise RuntimeError(
            f"pg_ctl {action} failed ({done.returncode}): {done.stderr.strip()}\n{log}"
        )


def redis(action: str) -> None:
    if action == "start":
        subprocess.run(["redis-server", "--port", str(redis_port()), "--bind", "127.0.0.1",
                        "--daemonize", "yes", "--save", "", "--appendonly", "no"], check=True,
                       capture_output=True)  # fmt: skip
        for _ in range(100):
            ping = subprocess.run(
                ["redis-cli", "-p", str(redis_port()), "ping"], capture_output=True
            )
            if ping.stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis did not start")
    subprocess.run(
        ["redis-cli", "-p", str(redis_port()), "shutdown", "nosave"], capture_output=True
    )


CONFIGS = {
    "sqlite": {"DATABASE_URL": f"sqlite:///{ROOT / 'var' / 'faults.sqlite3'}", "REDIS_URL": ""},
    "postgres": {},  # its URLs come from Services.env(): the ports are chosen when it starts
}


def run_config(config: str, only: list[str], extra_env: dict) -> list[dict]:
    env = {**os.environ, **CONFIGS[config], **extra_env, "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    args = [sys.executable, str(Path(__file__).resolve()), "--in-config", config]
    if only:
        args += ["--only", *only]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    results: list[dict] = [
        json.loads(line.removeprefix("RESULT "))
        for line in out.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    if out.returncode:
        print(out.stdout[-4000:], out.stderr[-6000:], sep="\n", file=sys.stderr)
        results.append({"config": config, "fault": "(the run stopped: see the output above)",
                         "figures": "", "target": "", "met": False, "delivered": 0, "lost": 0,
                         "duplicated": 0, "extra_sends": 0, "under_two_ids": 0})  # fmt: skip
    return results


def table(results: list[dict]) -> str:
    lines = ["| config | fault | delivered / lost / duplicated (extra sends) | under two ids | "
             "figures | target | met |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        counts = f"{r['delivered']} / {r['lost']} / {r['duplicated']} ({r['extra_sends']})"
        lines.append(f"| {r['config']} | {r['fault']} | {counts} | {r['under_two_ids']} | "
                     f"{r['figures']} | {r['target']} | {'yes' if r['met'] else '**no**'} |")  # fmt: skip
    return "\n".join(lines)


def drive(configs: list[str], only: list[str]) -> int:
    results: list[dict] = []
    if "sqlite" in configs:
        for path in (ROOT / "var").glob("faults.sqlite3*"):
            path.unlink()
        results += run_config("sqlite", only, {})
    if "postgres" in configs:
        services = Services()
        try:
            results += run_config("postgres", only, services.env())
        finally:
            services.close()
    print(table(results))
    return 0 if all(r["met"] for r in results) else 1


# --- one configuration: the scenarios ----------------------------------------------
def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")
    import django

    django.setup()
    from django.core.management import call_command

    import hooks

    hooks.register_event_type(EVENT, "Fault injection event.", example={"seq": 1})
    call_command("migrate", verbosity=0)


class Cluster:
    """`manage.py qcluster` (or runjobs) in a session of its own, waited for until it runs."""

    def __init__(self, name: str, command: str = "qcluster", **env: str) -> None:
        self.log = Path(tempfile.gettempdir()) / f"faults-{name}-{os.getpid()}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", command], cwd=ROOT,
            env={**os.environ, "VERBOSE": "true", **env},  # its "running." line says it is up
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            with self.log.open("w") as log:
                for line in self.proc.stdout:
                    log.write(line)
                    self.lines.append(line)
                    if "running." in line:
                        ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            raise RuntimeError(f"{command} did not start (log: {self.log})")

    def said(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def kill_tree(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float = 90) -> float:
        """SIGTERM to the main process; seconds until it exited."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        took = time.monotonic() - started
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # nothing may be left; say if so
        except ProcessLookupError:
            pass
        return took


class Hub:
    """The scenario's receiver, webhook, clusters and counts."""

    def __init__(self, delay: float = 0.005, **cluster_env: str) -> None:
        from hooks.tools.receiver import Receiver, Reply

        self.delay = delay
        self.refusing = False
        self.Reply = Reply
        self.receiver = Receiver(respond=self.respond).start()
        self.cluster_env = cluster_env
        self.clusters: list[Cluster] = []
        reset()
        from hooks.models import Webhook

        Webhook.objects.create(name="faults", url=self.receiver.url, event_types=[EVENT])

    def respond(self, request):
        time.sleep(self.delay)
        return self.Reply(200)

    def cluster(self, **env: str) -> Cluster:
        cluster = Cluster(f"q{len(self.clusters)}", **{**self.cluster_env, **env})
        self.clusters.append(cluster)
        return cluster

    def emit(self, n: int) -> None:
        from django.db import transaction

        import hooks

        with transaction.atomic():
            for seq in range(n):
                hooks.emit(EVENT, {"seq": seq})
        self.n = getattr(self, "n", 0) + n

    def received(self) -> int:
        return len(self.receiver.requests)

    def wait_received(self, count: int, timeout: float = 120) -> None:
        if not self.receiver.wait_for(count, timeout):
            raise TimeoutError(f"only {self.received()} of {count} arrived")

    def done(self, timeout: float = 180) -> float:
        """Seconds until every delivery succeeded (or the timeout)."""
        from hooks.models import Delivery

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if patiently(lambda: Delivery.objects.filter(status="succeeded").count()) >= self.n:
                break
            time.sleep(0.05)
        return time.monotonic() - started

    def held(self) -> set[str]:
        from hooks.models import Delivery

        claimed = Delivery.objects.filter(claim_token__isnull=False, status="pending")
        return patiently(lambda: {str(pk) for pk in claimed.values_list("pk", flat=True)})

    def whole(self) -> list:
        """The requests that arrived whole: a worker killed mid-request leaves the
        receiver headers without their body, which no receiver would accept."""
        return [r for r in self.receiver.requests
                if len(r.body) == int(r.headers.get("Content-Length", 0))]  # fmt: skip

    def counts(self) -> dict:
        whole = self.whole()
        ids = Counter(r.headers["webhook-id"] for r in whole)
        seqs: dict[int, set] = defaultdict(set)
        for r in whole:
            seqs[json.loads(r.body)["seq"]].add(r.headers["webhook-id"])
        return {
            "delivered": len(ids),
            "lost": self.n - len(ids),
            "duplicated": sum(1 for c in ids.values() if c > 1),
            "extra_sends": sum(c - 1 for c in ids.values()),
            "under_two_ids": sum(1 for s in seqs.values() if len(s) > 1),
        }

    def close(self) -> None:
        for cluster in self.clusters:
            if cluster.proc.poll() is None:
                cluster.terminate()
        self.receiver.stop()


def patiently(read, timeout: float = 90):
    """A read of this script's own that waits out a database restart it injected."""
    from django.db import InterfaceError, OperationalError, connection

    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except (OperationalError, InterfaceError):
            connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def reset() -> None:
    from django.conf import settings
    from django_q.models import OrmQ, Task

    from hooks.models import Attempt, Delivery, Event, Webhook
    from hooks.worker import journal

    for model in (Attempt, Delivery, Event, Webhook, OrmQ, Task):
        model.objects.all().delete()
    for path in journal.folder().glob("*.*"):  # a killed run's journals: its deliveries are gone
        path.unlink()
    if settings.REDIS_URL:
        from django_q.brokers import get_broker

        get_broker().purge_queue()


def first_after(hub: Hub, ids: set[str], since: float) -> float:
    """Seconds from `since` until the last of `ids` arrived again."""
    times = [r.received_at for r in hub.whole()
             if r.headers["webhook-id"] in ids and r.received_at > since]  # fmt: skip
    return max(times, default=since) - since


def answered_then_resent(hub: Hub, since: float) -> int:
    """Deliveries that arrived whole before `since` and again after it (their answer was
    not recorded in time): the re-sends a prompt record avoids."""
    before = {r.headers["webhook-id"] for r in hub.whole() if r.received_at < since - hub.delay}
    after = {r.headers["webhook-id"] for r in hub.whole() if r.received_at > since}
    return len(before & after)


def on_the_wire() -> set[str]:
    """The deliveries whose request the killed workers' journals (hooks.worker.journal)
    say went out with no answer got: read before a new cluster records them."""
    from hooks.worker import journal

    lines = journal.Lines()
    for path in journal.folder().glob(f"*{journal.SUFFIX}"):
        with path.open("rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # its writer is gone (killed: soon)
            journal.read(path, f.fileno(), lines)
    return {str(delivery_id) for delivery_id, _ in lines.on_the_wire()}


def not_answered(hub: Hub, killed: float, restarted: float) -> set[str]:
    """At the receiver: requests that came before the new cluster started and whose
    answer was not written whole before the kill (fewer than the journals count: an
    answer written just before the kill may not have been read yet)."""
    return {r.headers["webhook-id"] for r in hub.receiver.requests
            if r.received_at < restarted
            and (r.answered_at is None or r.answered_at >= killed)}  # fmt: skip


def kill9(hub: Hub) -> tuple[str, str, bool]:
    hub.emit(5000)
    first = hub.cluster()
    hub.wait_received(1250)
    killed = time.monotonic()
    first.kill_tree()
    held = hub.held()
    wire = on_the_wire()
    restarted = time.monotonic()
    hub.cluster()  # a supervisor starts it again
    hub.done()
    recovery = first_after(hub, held, killed)
    c = hub.counts()
    whole = Counter(r.headers["webhook-id"] for r in hub.whole())
    twice = {i for i, n in whole.items() if n > 1}
    unanswered = not_answered(hub, killed, restarted)
    answered = answered_then_resent(hub, killed)
    return (f"held at kill {len(held)}; all re-sent {recovery:.1f} s after the kill; re-sent "
            f"{len(twice)} ({c['extra_sends']} sends), on the wire at the kill {len(wire)} "
            f"(the receiver had not answered {len(unanswered)}); {answered} re-sent answered "
            f"before the kill, {len(twice - wire)} not on the wire",
            "re-sent within 30 s; re-sent ≤ on the wire, each of them on it",
            recovery <= 30 and twice <= wire)  # fmt: skip


def sigterm(hub: Hub, hold: float = 1.0) -> tuple[str, str, bool]:
    hub.delay = hold
    hub.emit(600)
    cluster = hub.cluster()
    hub.wait_received(60)
    took = cluster.terminate()
    parked = len(hub.held())
    hub.delay = 0.005
    hub.cluster()
    hub.done()
    c = hub.counts()
    return (f"stopped in {took:.1f} s (each request {hold:g} s), {parked} left claimed",
            "≤ slowest request + 2 s, 0 left claimed, 0 duplicated",
            took <= hold + 2 and parked == 0 and c["duplicated"] == 0)  # fmt: skip


def refusing(hub: Hub) -> tuple[str, str, bool]:
    from hooks.tools.receiver import Receiver

    hub.emit(1000)
    hub.cluster(WEBHOOK_RETRY_SCHEDULE="0,5,10,20,40")
    hub.wait_received(250)
    port, old = hub.receiver.port, hub.receiver
    old.stop()  # connections refused
    time.sleep(30)  # the fault: how long the receiver stays away
    hub.receiver = Receiver(port=port, respond=hub.respond).start()
    hub.receiver.requests = old.requests  # one count across both
    back = time.monotonic()
    took = hub.done()
    c = hub.counts()
    return (
        f"receiver away 30 s; all delivered {took:.1f} s after it returned",
        "all delivered once it is back",
        c["lost"] == 0 and time.monotonic() - back < 60,
    )


def two_clusters(hub: Hub) -> tuple[str, str, bool]:
    hub.delay = 0.05
    hub.emit(2000)
    hub.cluster()
    hub.cluster()
    took = hub.done()
    attempts = duplicate_attempts()
    return (
        f"drained in {took:.1f} s, {attempts} duplicate attempts",
        "0 duplicate attempts",
        attempts == 0 and hub.counts()["duplicated"] == 0,
    )


def duplicate_attempts() -> int:
    from django.db.models import Count

    from hooks.models import Attempt

    return (
        Attempt.objects.values("delivery_id", "number")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )


def db_restart(hub: Hub) -> tuple[str, str, bool]:
    hub.emit(5000)
    cluster = hub.cluster()
    hub.wait_received(1250)
    in_flight = len(hub.held())
    pg_ctl(os.environ, "restart")
    took = hub.done()
    gave_up = cluster.said("giving up")
    c = hub.counts()
    return (
        f"done {took:.1f} s after the restart, {gave_up} pumps gave up, "
        f"{c['extra_sends']} re-sent of {in_flight} held",
        "0 parked (no pump gives up), duplicates ≤ what was held",
        gave_up == 0 and c["extra_sends"] <= in_flight and took < 30,
    )


def away(hub: Hub, stop, start, seconds: float) -> tuple[Cluster, int, float]:
    """Mid-drain, a service is stopped for `seconds`: (the cluster, what it held, seconds
    from the service's return until every delivery succeeded)."""
    hub.emit(5000)
    cluster = hub.cluster()
    hub.wait_received(1250)
    held = len(hub.held())
    stop()
    time.sleep(seconds)  # the fault: how long it stays away
    start()
    back = time.monotonic()
    hub.done()
    return cluster, held, time.monotonic() - back


def db_outage(hub: Hub, seconds: float = 20.0) -> tuple[str, str, bool]:
    cluster, held, took = away(hub, lambda: pg_ctl(os.environ, "stop"),
                               lambda: pg_ctl(os.environ, "start"), seconds)  # fmt: skip
    gave_up = cluster.said("giving up")
    c = hub.counts()
    return (f"database away {seconds:g} s; done {took:.1f} s after it returned, {gave_up} pumps "
            f"gave up, {c['extra_sends']} re-sent of {held} held",
            "rides it out: no pump gives up, duplicates ≤ what was held",
            gave_up == 0 and c["extra_sends"] <= held)  # fmt: skip


def redis_restart(hub: Hub, seconds: float = 10.0) -> tuple[str, str, bool]:
    _, _, took = away(hub, lambda: redis("stop"), lambda: redis("start"), seconds)
    return (
        f"Redis away {seconds:g} s; done {took:.1f} s after it returned",
        "done soon after it returns",
        hub.counts()["lost"] == 0 and took < 15,
    )


def emit_broker_down(hub: Hub) -> tuple[str, str, bool]:
    hub.cluster()
    redis("stop")
    hub.emit(200)  # commits; the hand-over fails and is logged
    time.sleep(5)  # the fault: Redis stays away a while
    redis("start")
    back = time.monotonic()
    hub.done()
    took = time.monotonic() - back
    return (
        f"emit() with Redis down raised nothing; delivered {took:.1f} s after Redis returned",
        "≤ 10 s after the broker returns",
        hub.counts()["lost"] == 0 and took <= 10,
    )


SCENARIOS = {
    "kill9": ("kill -9 of the qcluster tree mid-drain, then a new one", kill9, ("sqlite", "postgres")),
    "sigterm": ("SIGTERM to qcluster mid-drain (1 s receiver)", sigterm, ("sqlite", "postgres")),
    "refusing": ("receiver refusing connections for 30 s", refusing, ("sqlite", "postgres")),
    "two_clusters": ("two qclusters on one database and broker", two_clusters, ("sqlite", "postgres")),
    "db_restart": ("pg_ctl restart -m fast mid-drain", db_restart, ("postgres",)),
    "db_outage": ("PostgreSQL stopped for 20 s mid-drain", db_outage, ("postgres",)),
    "redis_restart": ("Redis stopped for 10 s mid-drain", redis_restart, ("postgres",)),
    "emit_broker_down": ("emit() while Redis is down", emit_broker_down, ("postgres",)),
}  # fmt: skip


def in_config(config: str, only: list[str]) -> None:
    setup_django()
    from django.db import connection

    for name, (fault, scenario, configs) in SCENARIOS.items():
        if config not in configs or (only and name not in only):
            continue
        hub = Hub()
        try:
            figures, target, met = scenario(hub)
            result = {"config": config, "fault": fault, "figures": figures, "target": target,
                      "met": bool(met), **hub.counts()}  # fmt: skip
            result["met"] = result["met"] and result["lost"] == 0 and result["under_two_ids"] == 0
        finally:
            hub.close()
            connection.close()
        print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--only", nargs="*", default=[], choices=list(SCENARIOS))
    parser.add_argument("--in-config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_config:
        in_config(args.in_config, args.only)
        return
    configs = list(CONFIGS) if args.config == "all" else [args.config]
    raise SystemExit(drive(configs, args.only))


if __name__ == "__main__":
    main()

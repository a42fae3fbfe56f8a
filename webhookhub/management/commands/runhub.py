"""Run the web server, the delivery workers and the job workers together (`make run`).

- SIGINT (Ctrl-C), SIGTERM (systemd, Docker, `kill`) and SIGHUP (a closed terminal) stop
  every child gracefully: each gets SIGTERM and up to GRACE seconds, then its whole
  process group is killed; the job workers get JOBS_GRACE (runjobs stops in SwarmUI's
  order: Server Shutdown, waited for up to 2 minutes, before its workers stop).
- If runhub itself dies, even by `kill -9`, the kernel sends each child SIGTERM
  (PR_SET_PDEATHSIG); runhub asks the same of its own parent (`make`), so stopping
  `make run` stops everything.
- If one child exits, runhub says which and stops the others.
- A busy port is refused at once, before anything starts.
- Quiet unless VERBOSE: no access log, django-q2 and gunicorn at WARNING; the login (and
  a password generated this run) is printed last, once the web server answers, and
  again when it stops.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import BaseCommand, CommandError

from jobs.events import SHUTDOWN_WAIT
from jobs.management.commands.runjobs import CLUSTER_GRACE
from webhookhub import admin_account
from webhookhub import children as child_processes
from webhookhub.children import die_with_parent

GRACE = 30.0  # seconds a child has to stop before its process group is killed
JOBS = "job workers (runjobs)"
JOBS_GRACE = SHUTDOWN_WAIT + CLUSTER_GRACE + GRACE  # its hook, its cluster, the rest


class Stop(Exception):
    """A stopping signal arrived."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError:
            return True
    return False


def address(host: str, port: str) -> str:
    """Where the hub answers, spelled as the login line spells it (SITE_URL's default
    says localhost), not once 127.0.0.1 and once localhost."""
    shown = "localhost" if host in ("127.0.0.1", "localhost", "::1", "[::1]") else host
    return f"http://{shown}:{port}/"


def _raise_stop(signum, frame) -> None:
    raise Stop(signal.Signals(signum).name)


def _stopping_already(signum, frame) -> None:
    """A second stopping signal while stopping (make forwards SIGTERM to runhub, and a
    supervisor's `kill -- -PGID` sends it too): the graceful stop goes on."""


STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Command(BaseCommand):
    help = "Start the web server (gunicorn), the delivery workers and the job workers (what `make run` runs)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument(
            "--no-admin", action="store_true", help="Do not make sure of an admin account."
        )

    def handle(self, *args, host: str, port: str, no_admin: bool, **options) -> None:
        if port_in_use(host, int(port)):
            raise CommandError(
                f"{host}:{port} is already in use (is webhookhub already running?); "
                "stop it, or start this one with another PORT."
            )
        die_with_parent()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _raise_stop)
        login = None if no_admin else admin_account.ensure()
        fresh_metrics()
        children = self.start(host, port)
        failed = ""
        try:
            if self.wait_for_web(host, int(port), children["web server (gunicorn)"]):
                self.stdout.write(
                    f"webhookhub is running on {address(host, port)} (Ctrl-C stops it)"
                )
                self.tell(login)
            failed = self.watch(children)
        except (KeyboardInterrupt, Stop):
            self.stdout.write("Stopping…")
        finally:
            for signum in STOPPING_SIGNALS:  # once stopping, a signal more changes nothing
                signal.signal(signum, _stopping_already)
            self.stop(children)
        if login and login.password:
            self.tell(login)  # the password scrolled away: once more, on the way out
        if failed:
            raise CommandError(failed)

    def tell(self, login: admin_account.Login | None) -> None:
        if login:
            text = "\n".join(login.lines())
            self.stdout.write(self.style.SUCCESS(text) if login.password else text)

    def wait_for_web(self, host: str, port: int, web: subprocess.Popen) -> bool:
        """Until the web server accepts connections (or exits, which `watch` reports)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and web.poll() is None:
            try:
                socket.create_connection((host.strip("[]"), port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def start(self, host: str, port: str) -> dict[str, subprocess.Popen]:
        """Each child in a session of its own, so Ctrl-C reaches only runhub."""
        manage = [sys.executable, "manage.py"]
        web = [sys.executable, "-m", "gunicorn", "webhookhub.wsgi", "--bind", f"{host}:{port}",
               "--workers", "2", "--threads", "4"]  # fmt: skip
        if settings.VERBOSE:
            web += ["--access-logfile", "-"]
        else:
            web += ["--log-level", "warning"]
        commands = {
            "delivery workers (qcluster)": [*manage, "qcluster"],
            JOBS: [
                *manage,
                "runjobs",
                "--verbosity",
                "1" if settings.VERBOSE else "0",
            ],
            "web server (gunicorn)": web,
        }
        return {name: child_processes.start(command) for name, command in commands.items()}

    def watch(self, children: dict[str, subprocess.Popen]) -> str:
        """Wait until a child exits; returns what happened."""
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    message = f"The {name} exited with code {child.returncode}; stopping the rest."
                    self.stderr.write(message)
                    return message
            time.sleep(0.5)

    def stop(self, children: dict[str, subprocess.Popen]) -> None:
        """All told at once; the job workers waited for longer (JOBS_GRACE)."""
        jobs = children[JOBS]
        if jobs.poll() is None:
            jobs.send_signal(signal.SIGTERM)
        others = [child for name, child in children.items() if name != JOBS]
        late = child_processes.stop(others, GRACE)
        late += child_processes.stop([jobs], JOBS_GRACE)
        for name, child in children.items():
            if child in late:
                grace = JOBS_GRACE if name == JOBS else GRACE
                self.stderr.write(f"The {name} did not stop within {grace:g} s; killed it.")


def fresh_metrics() -> None:
    """The machine's Prometheus counter files start empty with the hub, as
    prometheus-client's multiprocess mode asks (files of processes gone would pile up;
    Prometheus reads the drop to zero as a counter reset)."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    for path in folder.glob("*.db"):
        path.unlink(missing_ok=True)

"""Run the web server, the delivery workers and the job workers together (`make run`).

- SIGINT (Ctrl-C), SIGTERM (systemd, Docker, `kill`) and SIGHUP (a closed terminal) stop
  every child gracefully: each gets SIGTERM and up to GRACE seconds, then its whole
  process group is killed.
- If runhub itself dies, even by `kill -9`, the kernel sends each child SIGTERM
  (PR_SET_PDEATHSIG); runhub asks the same of its own parent (`make`), so stopping
  `make run` stops everything.
- If one child exits, runhub says which and stops the others.
- A busy port is refused at once, before anything starts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from django.core.management import BaseCommand, CommandError

from webhookhub import children as child_processes
from webhookhub.children import die_with_parent

GRACE = 30.0  # seconds a child has to stop before its process group is killed


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


def _raise_stop(signum, frame) -> None:
    raise Stop(signal.Signals(signum).name)


class Command(BaseCommand):
    help = "Start the web server (gunicorn), the delivery workers and the job workers (what `make run` runs)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args, host: str, port: str, **options) -> None:
        if port_in_use(host, int(port)):
            raise CommandError(
                f"{host}:{port} is already in use (is webhookhub already running?); "
                "stop it, or start this one with another PORT."
            )
        die_with_parent()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _raise_stop)
        children = self.start(host, port)
        self.stdout.write(f"webhookhub is running on http://{host}:{port}/admin/ (Ctrl-C stops it)")
        failed = ""
        try:
            failed = self.watch(children)
        except (KeyboardInterrupt, Stop):
            self.stdout.write("Stopping…")
        finally:
            self.stop(children)
        if failed:
            raise CommandError(failed)

    def start(self, host: str, port: str) -> dict[str, subprocess.Popen]:
        """Each child in a session of its own, so Ctrl-C reaches only runhub."""
        manage = [sys.executable, "manage.py"]
        web = [sys.executable, "-m", "gunicorn", "webhookhub.wsgi", "--bind", f"{host}:{port}",
               "--workers", "2", "--threads", "4", "--access-logfile", "-"]  # fmt: skip
        commands = {
            "delivery workers (qcluster)": [*manage, "qcluster"],
            "job workers (runjobs)": [*manage, "runjobs"],
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
        late = child_processes.stop(list(children.values()), GRACE)
        for name, child in children.items():
            if child in late:
                self.stderr.write(f"The {name} did not stop within {GRACE:g} s; killed it.")

"""Run the web server and one task cluster together; Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.core.management import BaseCommand


class Command(BaseCommand):
    help = "Start the web server (gunicorn), the delivery workers and the job workers (what `make run` runs)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args, host: str, port: str, **options) -> None:
        manage = [sys.executable, "manage.py"]
        # Own sessions: Ctrl-C reaches only this process, which then stops each
        # child's main process with SIGTERM (signalling qcluster's whole process
        # group can leave it hanging).
        children = [
            subprocess.Popen([*manage, "qcluster"], start_new_session=True),
            subprocess.Popen([*manage, "runjobs"], start_new_session=True),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "webhookhub.wsgi",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--access-logfile",
                    "-",
                ],
                start_new_session=True,
            ),
        ]
        self.stdout.write(f"webhookhub is running on http://{host}:{port}/admin/ (Ctrl-C stops it)")
        try:
            while all(child.poll() is None for child in children):
                try:
                    children[0].wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()

"""Run the job workers: `Server Start` hook, a qcluster for the `jobs` queue, and the
`Server Shutdown` hook (waited for at most 2 minutes) when it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.core.management import BaseCommand

import hooks
from jobs.lifecycle import CLUSTER

SHUTDOWN_WAIT = 120.0


class Command(BaseCommand):
    help = "Start the job workers (a django-q2 cluster for the jobs queue) with SwarmUI's server hooks."

    def handle(self, *args, **options) -> None:
        env = {**os.environ, "Q_CLUSTER_NAME": CLUSTER}
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], env=env, start_new_session=True
        )
        stopping = []

        def stop(signum, frame) -> None:
            stopping.append(signum)
            if cluster.poll() is None:
                cluster.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Job workers running (cluster {CLUSTER!r}).")
        hooks.send_to_slot("server_start")
        try:
            cluster.wait()
        finally:
            if cluster.poll() is None:
                cluster.send_signal(signal.SIGTERM)
                cluster.wait(120)
            hooks.send_to_slot("server_shutdown", timeout=SHUTDOWN_WAIT)
            self.stdout.write("Job workers stopped.")

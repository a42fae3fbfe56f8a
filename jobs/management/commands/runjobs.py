"""Run the job workers: `Server Start` hook, a qcluster for the `jobs` queue, and the
queue's ticker (a thread: it sends `Queue End` once the queue has been quiet for the
Queue End Delay, as SwarmUI's tick loop does, so no job worker ever waits for it).

SIGTERM, SIGINT or SIGHUP stop it in SwarmUI's order: the `Server Shutdown` hook first
(waited for at most SHUTDOWN_WAIT, the workers still running), then the ticker and the
cluster stop, then `Queue End` if the queue was busy. A running job gets JOB_STOP_GRACE
seconds to finish and is then given back to the queue (jobs.runner); the cluster's
whole process group is killed if it is not gone CLUSTER_GRACE seconds after it was
told to stop. If runjobs itself dies, the kernel sends the cluster SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from django.core.management import BaseCommand

import hooks
from jobs import queue, workers
from jobs.events import SHUTDOWN_WAIT
from jobs.lifecycle import CLUSTER
from jobs.runner import JOB_STOP_GRACE
from webhookhub import children

CLUSTER_GRACE = JOB_STOP_GRACE + 5.0
POLL = 0.2  # seconds between looks at the cluster and the signals


class Command(BaseCommand):
    help = "Start the job workers (a django-q2 cluster for the jobs queue) with SwarmUI's server hooks."

    def handle(self, *args, verbosity: int = 1, **options) -> None:
        env = {**os.environ, "Q_CLUSTER_NAME": CLUSTER}
        cluster = children.start([sys.executable, "manage.py", "qcluster"], env=env)

        stopping: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda signum, frame: stopping.append(signum))
        if verbosity:  # runhub says it for all of them
            self.stdout.write(f"Job workers running (cluster {CLUSTER!r}).")
        hooks.send_to_slot("server_start")
        ticking = threading.Event()
        ticker = threading.Thread(target=queue.run_ticker, args=(ticking,), name="queue-ticker")
        ticker.start()
        name, next_beat = workers.this_cluster(), 0.0
        try:
            while not stopping and cluster.poll() is None:
                if time.monotonic() >= next_beat:
                    workers.beat(name)
                    next_beat = time.monotonic() + workers.BEAT
                time.sleep(POLL)
        finally:
            # SwarmUI's order: Server Shutdown while everything still runs, then the
            # workers stop, then Queue End (if the queue was still busy).
            hooks.send_to_slot("server_shutdown", timeout=SHUTDOWN_WAIT)
            ticking.set()
            ticker.join()  # a Queue End it is sending is finished, not cut off
            if children.stop([cluster], CLUSTER_GRACE):
                self.stderr.write(
                    f"The jobs cluster did not stop within {CLUSTER_GRACE:g} s; killed it."
                )
            workers.gone(name)
            queue.shut_down()
            if verbosity:
                self.stdout.write("Job workers stopped.")

"""`manage.py qcluster`: django-q2's cluster, with what the delivery engine needs around it.

- One stop flag shared by every process of the cluster (`hooks.worker.stopping`), raised
  on SIGTERM or SIGINT: pumps stop claiming at once, hand back what has not gone out,
  and the cluster exits once what is in flight has landed (django-q2 alone tells only
  its main process, and workers run their queued tasks to the end first).
- The ticker (`hooks.worker.ticker`) in the main process of the delivery cluster:
  retries and lapsed claims go to the broker within a second of falling due.

It replaces django-q2's command of the same name (the `hooks` app comes before
`django_q` in INSTALLED_APPS) and takes the same options.
"""

from __future__ import annotations

import os
import signal

from django.conf import settings
from django.core.management import CommandError
from django.db import connections
from django_q.cluster import Cluster
from django_q.conf import Conf
from django_q.management.commands import qcluster

from hooks.worker import stopping
from hooks.worker.ticker import Ticker

POLL = 0.5  # seconds: how often a cluster without a ticker checks on its sentinel


def _request_stop(signum, frame) -> None:
    stopping.request()


class Command(qcluster.Command):
    help = (
        "Start a django-q2 cluster (the delivery workers, or with Q_CLUSTER_NAME another queue's)."
    )

    def handle(self, *args, cluster_name=None, run_once=False, **options) -> None:
        settings.SECRET_KEY  # noqa: B018 (django-q2 signs tasks with it: fail early)
        if cluster_name:
            os.environ["Q_CLUSTER_NAME"] = cluster_name
        stopping.install()  # before the cluster forks: every process shares the flag
        cluster = Cluster()
        for signum in (signal.SIGTERM, signal.SIGINT):  # instead of django-q2's handler
            signal.signal(signum, _request_stop)
        connections.close_all()  # no connection may cross the fork
        cluster.start()
        if not run_once:
            self.wait(cluster)
        cluster.stop()
        if not stopping.cluster_stopping() and not run_once:
            raise CommandError("The cluster's sentinel died; stopping.")

    @staticmethod
    def wait(cluster: Cluster) -> None:
        """Until a stop is requested or the sentinel dies: tick (delivery cluster)."""
        alive = cluster.sentinel.is_alive
        if Conf.CLUSTER_NAME == Conf.PREFIX:
            Ticker().run(alive)
            return
        while alive() and not stopping.wait(POLL):
            pass

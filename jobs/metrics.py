"""The job system's figures for /metrics: jobs by state, the queue's state (SwarmUI's
busy/idle), and the job workers RunPod's /health reports."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from jobs import workers
from jobs.models import Job, QueueState


class JobsCollector:
    def collect(self) -> Iterable[Metric]:
        jobs = GaugeMetricFamily("webhookhub_jobs", "Jobs kept, by state.", labels=["state"])
        counted = dict(Job.objects.values_list("status").annotate(n=Count("id")).order_by())
        for state in Job.Status.values:
            jobs.add_metric([state], counted.get(state, 0))
        yield jobs
        queue = GaugeMetricFamily(
            "webhookhub_queue_state", "1 for the job queue's current state.", labels=["state"]
        )
        current = QueueState.objects.values_list("state", flat=True).first() or "idle"
        for state in QueueState.State.values:
            queue.add_metric([state], 1 if state == current else 0)
        yield queue
        counts = workers.counts()
        live = GaugeMetricFamily(
            "webhookhub_job_workers", "Live job workers, running a job or idle.", labels=["state"]
        )
        for state in ("idle", "running"):
            live.add_metric([state], counts[state])
        yield live

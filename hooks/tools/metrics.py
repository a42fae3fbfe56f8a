"""GET /metrics: Prometheus' text format, made by prometheus-client.

A scrape sums this machine's worker counters (hooks/metrics.py, one file per process)
and adds what the database knows now, read with indexed queries only (no COUNT over
the history): the backlog due and its oldest due time, disabled webhooks. Other apps
add their own figures with `hooks.register_metrics(collector)` (jobs: states, the queue,
job workers)."""

from __future__ import annotations

import glob
import hmac
import ipaddress
import os
import re
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

from hooks.models import Delivery, Webhook

_collectors: list = []
_LIVE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db$")


def register_metrics(collector) -> None:
    """A prometheus-client collector (an object with `collect()`) added to every scrape."""
    if collector not in _collectors:
        _collectors.append(collector)


class EngineCollector:
    """Deliveries and webhooks as the database has them at the scrape."""

    def collect(self) -> Iterable[Metric]:
        now = timezone.now()
        due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        oldest = due.aggregate(oldest=Min("next_attempt_at"))["oldest"]
        yield GaugeMetricFamily(
            "webhookhub_backlog_due", "Deliveries due now and not yet sent.", due.count()
        )
        yield GaugeMetricFamily(
            "webhookhub_backlog_oldest_due_seconds",
            "How long the oldest due delivery has been due (0 when none is).",
            (now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "webhookhub_webhooks_disabled",
            "Webhooks the hub disabled because their receiver kept failing.",
            Webhook.objects.filter(disabled_at__isnull=False).count(),
        )


def _forget_dead_processes(folder: str) -> None:
    """Per-process gauges of processes that are gone (a worker recycled or killed)."""
    for path in glob.glob(os.path.join(folder, "gauge_live*_*.db")):
        found = _LIVE_FILE.search(path)
        if found and not _alive(int(found.group(1))):
            multiprocess.mark_process_dead(int(found.group(1)), folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scrape() -> bytes:
    registry = CollectorRegistry()
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        _forget_dead_processes(folder)
        multiprocess.MultiProcessCollector(registry, path=folder)
    for collector in [EngineCollector(), *_collectors]:
        registry.register(collector)
    return generate_latest(registry)


def allowed(request: HttpRequest) -> bool:
    """With METRICS_TOKEN set, only its bearer may scrape, from anywhere: a reverse proxy on
    the same machine makes every visitor's peer address a loopback one. Without it, the
    peer address must be in METRICS_ALLOWED_NETWORKS."""
    token = settings.METRICS_TOKEN
    if token:
        header = request.headers.get("Authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    networks = [ipaddress.ip_network(n, strict=False) for n in settings.METRICS_ALLOWED_NETWORKS]
    return any(address in network for network in networks)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(
            "Use GET.\n", status=405, content_type="text/plain", headers={"Allow": "GET"}
        )
    if not allowed(request):
        return HttpResponse(
            "Forbidden: send Authorization: Bearer <METRICS_TOKEN> (required when it is set), "
            "or scrape from an address in METRICS_ALLOWED_NETWORKS.\n", status=403,
            content_type="text/plain",
        )  # fmt: skip
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)

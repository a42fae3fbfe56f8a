"""GET /metrics: Prometheus' text format (parsed with prometheus-client's own parser),
who may scrape, worker counters summed over processes, database figures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

import hooks
from hooks.models import Delivery
from hooks.tools.receiver import Receiver, Reply
from hooks.worker.attempt import deliver_due
from jobs.models import Endpoint, Job
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", REMOTE_ADDR=extra.pop("addr", "127.0.0.1"), **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_who_may_scrape(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 403 and b"METRICS_TOKEN" in refused.content
    settings.METRICS_TOKEN = "s3cret-token"
    ok = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert ok.status_code == 200
    wrong = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
    assert client.post("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 405


def test_a_set_token_is_required_even_from_an_allowed_address(client, settings):
    """A reverse proxy on the same machine makes every visitor look like 127.0.0.1."""
    settings.METRICS_TOKEN = "s3cret-token"
    proxied = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert proxied.status_code == 403 and b"s3cret" not in proxied.content
    wrong = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Bearer s3cret")
    assert wrong.status_code == 403
    bearer = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Bearer s3cret-token"
    )
    assert bearer.status_code == 200 and b"webhookhub_backlog_due" in bearer.content


def test_deliveries_and_attempts_are_counted_by_outcome(client):
    before = scrape(client)
    answer = lambda got: Reply(status=500 if got.path == "/refuse" else 200)  # noqa: E731
    with Receiver(respond=answer) as receiver:
        make_webhook(receiver.url)
        refused = make_webhook(receiver.url.replace("/hook", "/refuse"))
        with transaction.atomic():
            hooks.emit(TEST_EVENT, {"n": 1})
            Delivery.objects.filter(webhook=refused).update(max_attempts=1)
        assert deliver_due() == 2
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("webhookhub_deliveries_total", outcome="succeeded", event_type=TEST_EVENT) == 1
    assert grew("webhookhub_attempts_total", response_class="2xx") == 1
    assert grew("webhookhub_attempts_total", response_class="5xx") == 1
    assert grew("webhookhub_delivery_latency_seconds_count") == 1
    assert grew("webhookhub_attempt_duration_seconds_count") == 2
    assert grew("webhookhub_deliveries_total", outcome="failed", event_type=TEST_EVENT) == 1
    assert grew("webhookhub_retries_total") == 0


def test_a_batch_counts_every_attempt_in_it(client):
    """One recording of many attempts adds each of them, not one per series."""
    before = scrape(client)
    answer = lambda got: Reply(status=503 if got.path == "/busy" else 200)  # noqa: E731
    with Receiver(respond=answer) as receiver:
        for _ in range(3):
            make_webhook(receiver.url)
        for _ in range(2):
            make_webhook(receiver.url.replace("/hook", "/busy"))
        hooks.emit(TEST_EVENT, {"n": 1})
        assert deliver_due() == 5
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("webhookhub_pump_recorded_total") == 5
    assert grew("webhookhub_attempts_total", response_class="2xx") == 3
    assert grew("webhookhub_attempts_total", response_class="5xx") == 2
    assert grew("webhookhub_deliveries_total", outcome="succeeded", event_type=TEST_EVENT) == 3
    assert grew("webhookhub_retries_total") == 2
    assert grew("webhookhub_attempt_duration_seconds_count") == 5


def test_the_backlog_and_disabled_webhooks_come_from_the_database(client, receiver):
    make_webhook(receiver.url)
    make_webhook(receiver.url, disabled_at=timezone.now(), active=True)
    with transaction.atomic():
        for n in range(3):
            hooks.emit(TEST_EVENT, {"n": n})
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=90))
    samples = scrape(client)
    assert value(samples, "webhookhub_backlog_due") == 3
    assert 90 <= value(samples, "webhookhub_backlog_oldest_due_seconds") < 120
    assert value(samples, "webhookhub_webhooks_disabled") == 1


def test_jobs_queue_and_job_workers(client, ann):
    endpoint = Endpoint.objects.get_or_create(name="echo")[0]
    Job.objects.create(endpoint=endpoint, user=ann, input={}, status=Job.Status.IN_QUEUE)
    Job.objects.create(endpoint=endpoint, user=ann, input={}, status=Job.Status.COMPLETED)
    samples = scrape(client)
    assert value(samples, "webhookhub_jobs", state="IN_QUEUE") == 1
    assert value(samples, "webhookhub_jobs", state="COMPLETED") == 1
    assert value(samples, "webhookhub_queue_state", state="idle") == 1
    assert value(samples, "webhookhub_queue_state", state="busy") == 0
    assert ("webhookhub_job_workers", (("state", "idle"),)) in samples


CHILD = textwrap.dedent(
    """
    import os, sys
    from prometheus_client import values  # the multiprocess value class, from the env
    from hooks import metrics
    metrics.DELIVERIES.labels("succeeded", "child.test").inc(int(sys.argv[1]))
    metrics.IN_FLIGHT.set(7)
    """
)


def test_counters_of_every_process_on_the_machine_add_up(client, settings):
    """Worker processes write their own files; a scrape in the web process sums them,
    and a process that is gone leaves its counters but not its live gauges."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": os.environ["PROMETHEUS_MULTIPROC_DIR"]}
    before = scrape(client)
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", CHILD, str(n)], check=True, env=env,
                       cwd=settings.BASE_DIR, timeout=60)  # fmt: skip
    after = scrape(client)
    grown = value(after, "webhookhub_deliveries_total", outcome="succeeded",
                  event_type="child.test") - value(before, "webhookhub_deliveries_total",
                  outcome="succeeded", event_type="child.test")  # fmt: skip
    assert grown == 5
    live = {dict(labels)["pid"] for name, labels in after if name == "webhookhub_pump_in_flight"}
    # The children are gone: no live gauge of theirs. (A process still running beside the
    # suite, e.g. a cluster another test is stopping, may still show its own.)
    assert not [pid for pid in live if not _alive(int(pid))], live


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_runhub_starts_the_machines_counters_from_empty(tmp_path, monkeypatch):
    from webhookhub.management.commands.runhub import fresh_metrics

    (tmp_path / "counter_123.db").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    fresh_metrics()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.django_db(transaction=False)
def test_a_batch_observed_at_once_counts_as_each_observed_alone():
    """`metrics.observe_all` writes each bucket once per batch: the same counts and sum
    as `observe` per amount, bounds included (a bucket holds what is ≤ its bound)."""
    from prometheus_client import Histogram

    from hooks.metrics import observe_all

    amounts = [0.0, 0.005, 0.0051, 0.01, 0.3, 1.0, 1.0, 59.9, 61.0, 10_000.0]
    one, together = (
        Histogram(f"test_batch_{name}", "t", buckets=(0.005, 0.01, 0.5, 1, 60), registry=None)
        for name in ("one", "together")
    )
    for amount in amounts:
        one.observe(amount)
    observe_all(together, amounts)
    observe_all(together, [])
    assert [b.get() for b in together._buckets] == [b.get() for b in one._buckets]
    assert [b.get() for b in one._buckets] == [2, 2, 1, 2, 1, 2]
    assert together._sum.get() == pytest.approx(one._sum.get())

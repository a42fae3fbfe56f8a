"""`manage.py webhooks` subcommands, prune and the dashboard."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
import requests
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from hooks import emit, webhook_secrets
from hooks.models import Attempt, Delivery, Event
from hooks.outgoing import signing
from hooks.tools import retention, stats
from hooks.tools.receiver import Reply
from hooks.worker.attempt import deliver_due
from tests.conftest import ROOT, TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("webhooks", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def failing_history(receiver, count: int = 3):
    receiver.respond = lambda request: Reply(500, body=b"nope")
    webhook = make_webhook(receiver.url, name="flaky")
    for n in range(count):
        emit(TEST_EVENT, {"n": n})
    deliver_due()
    Delivery.objects.update(status="failed", next_attempt_at=None)
    return webhook


def test_list_and_status(receiver):
    webhook = failing_history(receiver)
    assert "flaky" in run("list") and receiver.url in run("list")
    status = run("status")
    assert "success   0.0%" in status and "(0 ok, 3 failed)" in status
    assert "HTTP 500" in status and "backlog 0" in status
    assert str(webhook.pk) in status


def test_test_subcommand_reports_the_answer(receiver):
    make_webhook(receiver.url, name="pingme")
    assert "HTTP 200" in run("test", "pingme")
    receiver.respond = lambda request: Reply(503)
    with pytest.raises(CommandError, match="not accepted"):
        run("test", "pingme")
    with pytest.raises(CommandError, match="No webhook"):
        run("test", "nobody")


def test_redeliver_with_filters_and_dry_run(receiver):
    webhook = failing_history(receiver)
    receiver.respond = lambda request: Reply(200)
    assert "3 deliveries would be redelivered" in run("replay", "--webhook", "flaky", "--dry-run")
    assert "0 deliveries would" in run("replay", "--status", "skipped", "--dry-run")
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert "0 deliveries would" in run("replay", "--since", tomorrow, "--dry-run")
    assert "3 deliveries queued" in run(
        "redeliver", "--webhook", str(webhook.pk), "--event-type", TEST_EVENT
    )
    assert deliver_due() == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "yesterday"], "is not a date"),
        (["--event-type", "no.such"], "Unknown event type"),
        (["--status", "lost"], "invalid choice"),
    ],
)
def test_redeliver_refuses_bad_filters(args, message):
    with pytest.raises(CommandError, match=message):
        run("redeliver", *args)


def test_prune_deletes_old_finished_history_only(receiver):
    failing_history(receiver, count=2)
    Event.objects.update(created_at=timezone.now() - timedelta(days=40))
    emit(TEST_EVENT, {"n": "recent"})
    old_pending = emit(TEST_EVENT, {"n": "old but pending"})
    Event.objects.filter(pk=old_pending.pk).update(created_at=timezone.now() - timedelta(days=40))
    assert "Pruned 2 events" in run("prune", "--days", "30")
    assert Event.objects.count() == 2 and Attempt.objects.count() == 0
    assert Event.objects.filter(pk=old_pending.pk).exists()  # still being delivered: kept
    Delivery.objects.update(status="succeeded")
    assert retention.prune(timezone.now() - timedelta(days=30), batch=1)["events"] == 1
    with pytest.raises(CommandError):
        run("prune", "--days", "0")


def test_prune_rests_between_batches_only_while_deliveries_are_due(receiver, monkeypatch, settings):
    settings.WEBHOOK_FAILING_AFTER_ATTEMPTS = 0  # only the test's own events to prune
    failing_history(receiver, count=3)
    Delivery.objects.update(status="succeeded", next_attempt_at=None)
    Event.objects.update(created_at=timezone.now() - timedelta(days=40))
    rests = []
    monkeypatch.setattr(retention.time, "sleep", rests.append)
    cut = timezone.now() - timedelta(days=30)
    assert retention.prune(cut, batch=1) == {
        "events": 3,
        "deliveries": 3,
        "attempts": 3,
        "large_values": 0,
    }
    assert rests == []  # nothing due: as fast as it goes
    failing_history(receiver, count=2)
    Event.objects.update(created_at=timezone.now() - timedelta(days=40))
    Delivery.objects.update(status="succeeded", next_attempt_at=None)
    emit(TEST_EVENT, {"n": "due now"})  # a drain is on
    assert retention.prune(cut, batch=1)["events"] == 2
    assert len(rests) == 2 and all(r >= 0 for r in rests)


def test_dashboard_renders_numbers_and_a_chart(admin_client, receiver):
    answers = iter([200, 200, 500])
    receiver.respond = lambda request: Reply(next(answers))
    make_webhook(receiver.url)
    for n in range(3):
        emit(TEST_EVENT, {"n": n})
    deliver_due()
    Delivery.objects.filter(status="pending").update(status="failed")
    for period in ("24h", "7d"):
        page = admin_client.get(reverse("hooks_dashboard") + f"?period={period}").content.decode()
        assert '<svg class="hub-chart"' in page
        assert not re.findall(r'(?:src|href)="(?:https?:)?//', page)  # nothing from a CDN
        assert "67&nbsp;%" in page and "2 ok / 1 failed" in page
        assert "receiver" in page  # failures by webhook
    assert admin_client.get(reverse("admin:index")).content.decode().count("Webhook dashboard") >= 1


@pytest.mark.parametrize("period", ["24h", "7d"])
def test_dashboard_buckets_count_each_delivery_once_in_its_hour_or_day(receiver, period):
    """The buckets are ranges between local hour/day bounds; a delivery on a bound
    belongs to the later one, one before the period to none."""
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 0})
    template = Delivery.objects.get()
    now = timezone.now()
    span, step = stats.PERIODS[period]
    first = stats._floor(timezone.localtime(now - span), step)
    moments = [now - span - timedelta(seconds=1), now - span + timedelta(seconds=1),
               first + step, first + 2 * step - timedelta(microseconds=1), now]  # fmt: skip
    for moment in moments:
        for status in ("succeeded", "failed", "pending"):
            Delivery.objects.create(event=template.event, webhook=template.webhook,
                                    status=status, created_at=moment)  # fmt: skip
    template.delete()
    summary = stats.summary(period, now=now)
    expected: Counter = Counter()
    for moment in moments[1:]:
        start = next(b for b, *_ in reversed(summary.buckets) if b <= moment)
        expected[start] += 1
    assert [(b, ok, bad) for b, ok, bad in summary.buckets if ok or bad] == [
        (b, expected[b], expected[b]) for b, *_ in summary.buckets if expected[b]
    ]
    assert (summary.deliveries, summary.succeeded, summary.failed, summary.pending) == (12, 4, 4, 4)


def test_dashboard_needs_staff(client):
    assert client.get(reverse("hooks_dashboard")).status_code == 302


def test_receive_prints_requests_and_verifies_signatures():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = webhook_secrets.generate_secret()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "webhooks", "receive", "--port", str(port), "--secret", secret],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert "Listening on" in proc.stdout.readline()
        body = b'{"n":1}'
        ts = int(timezone.now().timestamp())
        good = {"webhook-id": "msg_1", "webhook-timestamp": str(ts),
                "webhook-signature": signing.sign(secret, "msg_1", ts, body)}  # fmt: skip
        assert (
            requests.post(
                f"http://127.0.0.1:{port}/x", data=body, headers=good, timeout=5
            ).status_code
            == 200
        )
        bad = {
            **good,
            "webhook-signature": signing.sign(webhook_secrets.generate_secret(), "msg_1", ts, body),
        }
        requests.post(f"http://127.0.0.1:{port}/x", data=body, headers=bad, timeout=5)
    finally:
        # SIGTERM: a Ctrl-C (SIGINT) is ignored by a command a script started in the background
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=10)[0]
    assert proc.returncode == 0  # a clean stop, not a kill
    assert '{"n":1}' in output
    assert "-- signature: valid" in output and "-- signature: INVALID" in output


def manage(*args: str) -> subprocess.CompletedProcess:
    """The command as a person runs it, from a shell."""
    from tests.test_e2e_qcluster import worker_env

    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=worker_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        (["redeliver", "--since", "yesterday"], "argument --since: 'yesterday' is not a date"),
        (["redeliver", "--status", "lost"], "argument --status: invalid choice: 'lost'"),
        (["prune"], "the following arguments are required: --days"),
        (["bogus"], "invalid choice: 'bogus'"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_status_2(args, message):
    out = manage("webhooks", *args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_several_statuses_as_the_readme_shows(receiver):
    failing_history(receiver, count=2)
    assert "2 deliveries would be" in run("redeliver", "--status", "failed", "skipped", "--dry-run")


def test_every_option_says_what_it_does():
    import argparse

    from hooks.management.commands.webhooks import Command

    parser = Command().create_parser("manage.py", "webhooks")
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, sub in subparsers.choices.items()
        for action in sub._actions
        if not action.help
    ]
    assert not missing


def test_a_failed_test_says_so_without_log_lines(transactional_db):
    make_webhook("http://127.0.0.1:9/nobody", name="nobody")
    out = manage("webhooks", "test", "nobody")
    assert out.returncode == 1
    assert "Could not connect" in out.stdout and "INFO" not in out.stdout + out.stderr


def test_long_replay_and_prune_show_a_progress_bar_and_a_summary(receiver, monkeypatch):
    from hooks.management.commands import webhooks as command

    monkeypatch.setattr(command.Command, "force_progress", True)
    failing_history(receiver, count=3)
    out, err = io.StringIO(), io.StringIO()
    call_command("webhooks", "redeliver", "--status", "failed", stdout=out, stderr=err)
    assert re.search(r"Queueing: 100%\|.*\| 3/3", err.getvalue()), err.getvalue()  # tqdm's bar
    assert re.match(
        r"3 deliveries queued for redelivery \(of 3 selected\) in \d+\.\d s\.", out.getvalue()
    )
    Delivery.objects.update(status="failed", claim_token=None)
    Event.objects.update(created_at=timezone.now() - timedelta(days=40))
    out, err = io.StringIO(), io.StringIO()
    call_command("webhooks", "prune", "--days", "30", stdout=out, stderr=err)
    assert "Pruning: 3 rows" in err.getvalue(), err.getvalue()
    assert re.match(
        r"Pruned 3 events older than 30 days, with 3 deliveries and \d+ attempts, in",
        out.getvalue(),
    )


def test_a_reader_that_stops_early_ends_the_listing_quietly(receiver):
    """`webhooks status | head`: the closed pipe ends the command, without a traceback."""

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    make_webhook(receiver.url)
    call_command("webhooks", "status", stdout=ClosedPipe())  # raises nothing

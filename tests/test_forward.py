"""`manage.py webhooks forward`: follows a webhook's feed and posts each delivery to a
local receiver, signed as the hub signs it (the receiver verifies with the
standardwebhooks library), on the hub's machine or against a hub elsewhere with an API
token; a failing receiver does not stop it; it stops cleanly and says how to resume."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest
from django.core.management import CommandError, call_command
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

import hooks
from accounts.models import ApiToken
from hooks.models import Attempt, Delivery, Webhook
from hooks.tools import forward
from hooks.tools.receiver import Received, Receiver, Reply
from tests.conftest import ROOT, TEST_EVENT, db_thread, make_webhook
from tests.test_api_webhooks import person
from tests.test_e2e_qcluster import worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def settled_at_once(settings):
    settings.WEBHOOK_FEED_SETTLE_SECONDS = 0


class Verifying:
    """A local receiver that checks each request's signature as a receiver built on the
    standardwebhooks library does: 204 when it verifies, 400 when not."""

    def __init__(self, secret: str):
        self.verifier = Verifier(secret)
        self.payloads: list[dict] = []

    def __call__(self, request: Received) -> Reply:
        try:
            self.payloads.append(self.verifier.verify(request.body, request.headers))
        except WebhookVerificationError:
            return Reply(400, body=b"bad signature")
        return Reply(204, body=b"")


def start(*args: str, env: dict | None = None) -> subprocess.Popen:
    """The command as a developer runs it; its first line says it is following."""
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "webhooks", "forward", *args], cwd=ROOT,
        env={**worker_env(), "WEBHOOK_FEED_SETTLE_SECONDS": "0", **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    first = proc.stdout.readline()
    assert first.startswith("Forwarding "), first + proc.stderr.read()
    return proc


def stop(proc: subprocess.Popen, how: int = signal.SIGINT) -> str:
    proc.send_signal(how)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err  # a clean stop
    return out


def resume_cursor(output: str) -> str:
    last = output.strip().splitlines()[-1]
    assert last.startswith("Stopped. Resume with --after "), last
    return last.rsplit(" ", 1)[1]


def test_it_follows_from_now_posts_each_delivery_signed_and_resumes_from_its_cursor():
    with Receiver() as hub_receiver, Receiver() as local:
        webhook = make_webhook(hub_receiver.url, name="orders")
        local.respond = checker = Verifying(webhook.secret)
        hooks.emit(TEST_EVENT, {"n": 0})  # before it started: not forwarded
        # A token in the environment is for a hub elsewhere: here it is not needed.
        proc = start(str(webhook.pk), "--to", local.url, "--poll", "0.05",
                     env={"WEBHOOKHUB_TOKEN": "whk_not_needed_here"})  # fmt: skip
        try:
            hooks.emit(TEST_EVENT, {"n": 1})
            hooks.emit(TEST_EVENT, {"n": 2})
            assert local.wait_for(2)
        finally:
            output = stop(proc, signal.SIGINT)
        assert checker.payloads == [{"n": 1}, {"n": 2}]
        made = Delivery.objects.filter(webhook=webhook).order_by("created_at")
        lines = output.strip().splitlines()
        assert [line.split()[3] for line in lines[:2]] == [str(d.pk) for d in made[1:]]
        assert all(f"  {TEST_EVENT}  " in line and line.endswith("-> 204") for line in lines[:2])
        cursor = resume_cursor(output)
        # The hub's own deliveries are untouched: forwarding is no attempt of theirs.
        assert not Attempt.objects.exists() and hub_receiver.requests == []
        assert set(made.values_list("status", flat=True)) == {"pending"}

        hooks.emit(TEST_EVENT, {"n": 3})  # made while it was stopped
        proc = start(str(webhook.pk), "--to", local.url, "--after", cursor, "--poll", "0.05")
        try:
            assert local.wait_for(3)
        finally:
            output = stop(proc, signal.SIGTERM)
        assert checker.payloads[2:] == [{"n": 3}] and len(local.requests) == 3
        assert output.count("-> 204") == 1


def test_a_hub_elsewhere_is_followed_with_an_api_token(live_server):
    owner = person("olga")
    with Receiver() as local:
        from namespaces.models import Namespace

        space = Namespace.objects.create(name="acme", path="acme", owner=owner)
        webhook = make_webhook("https://example.com/hook", name="ci", scope="namespace",
                               namespace=space.key)  # fmt: skip
        local.respond = checker = Verifying(webhook.secret)
        for n in range(3):
            hooks.emit(TEST_EVENT, {"n": n}, namespace=space.key)
        raw = ApiToken.issue(owner, "laptop")[1]
        proc = start("ci", "--hub", live_server.url, "--to", local.url, "--from-start",
                     env={"WEBHOOKHUB_TOKEN": raw})  # fmt: skip
        try:
            assert local.wait_for(3)
        finally:
            output = stop(proc)
    assert checker.payloads == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert output.count("-> 204") == 3 and raw not in output


def test_a_token_that_does_not_manage_the_webhook_is_refused(live_server):
    webhook = make_webhook("https://example.com/hook")
    raw = ApiToken.issue(person("sam"), "laptop")[1]
    out = subprocess.run(
        [sys.executable, "manage.py", "webhooks", "forward", str(webhook.pk), "--hub",
         live_server.url, "--token", raw, "--to", "http://127.0.0.1:9/hook"],
        cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert f"HTTP 404: No webhook {webhook.pk} that you manage." in out.stderr
    assert "Traceback" not in out.stderr


def run_forwarder(feed: forward.Feed, to: str, until: Callable) -> list[str]:
    """The forwarder in a thread of its own until `until(lines)` holds; its lines."""
    lines: list[str] = []
    changed = threading.Condition()

    def out(line: str) -> None:
        with changed:
            lines.append(line)
            changed.notify_all()

    forwarder = forward.Forwarder(feed, to, out, poll=0.05)
    thread = db_thread(lambda: forwarder.run(forwarder.begin(None)))
    thread.start()
    with changed:
        reached = changed.wait_for(lambda: until(lines), timeout=20)
    forwarder.stop.set()
    thread.join(20)
    assert reached and not thread.is_alive(), lines
    return lines


def test_a_failing_receiver_gets_a_few_tries_and_the_forwarder_goes_on(monkeypatch):
    monkeypatch.setattr(forward, "BACKOFF", (0.01, 0.01))
    with Receiver() as local:
        webhook = make_webhook("https://example.com/hook")
        verifying = Verifying(webhook.secret)

        def respond(request: Received) -> Reply:
            if json.loads(request.body)["n"] == 1:
                return Reply(503, body=b"down")
            return verifying(request)

        local.respond = respond
        hooks.emit(TEST_EVENT, {"n": 1})
        hooks.emit(TEST_EVENT, {"n": 2})
        lines = run_forwarder(forward.LocalFeed(webhook), local.url, lambda got: len(got) == 2)
    assert lines[0].endswith("-> HTTP 503: not delivered after 3 tries; going on")
    assert lines[1].endswith("-> 204") and verifying.payloads == [{"n": 2}]
    assert len(local.requests) == 4


def test_a_receiver_that_is_not_running_is_said_so_for_each_delivery(monkeypatch):
    import socket

    monkeypatch.setattr(forward, "BACKOFF", (0.01, 0.01))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    webhook = make_webhook("https://example.com/hook")
    hooks.emit(TEST_EVENT, {"n": 1})
    lines = run_forwarder(forward.LocalFeed(webhook), closed, lambda got: len(got) == 1)
    assert lines[0].endswith("-> could not connect: not delivered after 3 tries; going on")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "ftp://localhost/x"], "--to: 'ftp://localhost/x' is not an http:// or https:// URL."),
        (["--to", "http://localhost:3000/hook", "--token", "x"], "--token is for a hub elsewhere"),
        (["--to", "http://localhost:3000/hook", "--hub", "https://hub.example"], "--hub needs an API token"),
        (["--to", "http://localhost:3000/hook", "--hub", "hub.example", "--token", "t"], "--hub: 'hub.example' is not"),
        (["--to", "http://localhost:3000/hook", "--poll", "0"], "--poll must be more than 0"),
        (["--to", "http://localhost:3000/hook", "--after", "nonsense"], "after: not a cursor of a feed"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_with_a_clear_message(monkeypatch, args, message):
    monkeypatch.delenv("WEBHOOKHUB_TOKEN", raising=False)
    webhook = make_webhook("https://example.com/hook")
    with pytest.raises(CommandError) as refused:
        call_command("webhooks", "forward", str(webhook.pk), *args, stdout=io.StringIO())
    assert message in str(refused.value)
    assert Webhook.objects.count() == 1 and not Delivery.objects.exists()

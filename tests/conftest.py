from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from standardwebhooks.webhooks import Webhook as Verifier

from accounts.models import ApiToken
from hooks import catalog, process
from hooks.models import Scope, Webhook
from hooks.tools.receiver import Received, Receiver
from hooks.webhook_secrets import generate_secret

TEST_EVENT = "test.happened"
LOOPBACK = ["127.0.0.0/8", "::1/128"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def allow_loopback(settings):
    """Receivers run on 127.0.0.1; the default (refusing it) is proven in test_ssrf."""
    settings.WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    settings.WEBHOOK_USER_ALLOWED_NETWORKS = LOOPBACK
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed


@pytest.fixture(autouse=True)
def own_journals(settings, tmp_path, monkeypatch):
    """Each case's pumps keep their journals (hooks.worker.journal) apart, in this
    process and in the workers it starts: a journal left by one case is never recorded
    into another's deliveries."""
    folder = str(tmp_path / "journal")
    settings.WEBHOOK_JOURNAL_DIR = folder
    monkeypatch.setenv("WEBHOOK_JOURNAL_DIR", folder)


@pytest.fixture(autouse=True)
def fresh_process_state():
    """What this process learnt (endpoint bounds, stopped webhooks, env slots) is
    forgotten between cases."""
    process.reset()


@pytest.fixture(autouse=True, scope="session")
def test_event_type():
    if not catalog.is_registered_in_code(TEST_EVENT):
        catalog.register_event_type(
            TEST_EVENT,
            "Something happened (tests only).",
            scopes=(catalog.SERVER, catalog.USER, catalog.NAMESPACE),
            example={"thing": 1},
        )
    yield TEST_EVENT


def db_thread(target, *args) -> threading.Thread:
    """A thread that uses the database like a worker would, and closes its own
    connection when done (Django's connections are per thread: one left open keeps
    PostgreSQL from dropping the test database at the end)."""

    def run() -> None:
        try:
            target(*args)
        finally:
            connection.close()

    return threading.Thread(target=run)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def ann():
    """A user of the job API (modules with their own `ann` keep theirs)."""
    return get_user_model().objects.create_user(
        "ann@example.com", "ann@example.com", "pw", name="Ann"
    )


@pytest.fixture
def api(client, ann):
    _, raw = ApiToken.issue(ann, "tests")

    def call(
        method: str, path: str, body=None, token: str | None = raw, raw_body: bytes | None = None
    ):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        data = raw_body if raw_body is not None else json.dumps(body or {})
        if method == "GET":
            return client.get(path, **headers)
        return client.post(path, data=data, content_type="application/json", **headers)

    return call


def make_webhook(url: str, **fields) -> Webhook:
    fields.setdefault("name", "receiver")
    fields.setdefault("scope", Scope.SERVER)
    fields.setdefault("event_types", [TEST_EVENT])
    fields.setdefault("secret", generate_secret())
    return Webhook.objects.create(url=url, **fields)


def verify(webhook: Webhook, request: Received) -> dict:
    """The standardwebhooks library's verdict on a received request (raises if bad)."""
    return Verifier(webhook.secret).verify(request.body, request.headers)

"""The database picks an event's subscribers and writes their deliveries in one
statement: it must pick exactly whom the webhook's own rules say."""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone

from hooks import emit
from hooks.catalog import NAMESPACE, SCOPES, SERVER, USER, EventType
from hooks.models import Delivery, Scope, Webhook
from hooks.outbox import fanout
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db


def _expected(webhooks, event_type: EventType, user, namespace: str, audience) -> set[int]:
    """The rule in words: active; of a scope the event allows (and the audience, when
    given); the user's own or the namespace's own; subscribed to the type or to '*'."""
    allowed = set(event_type.scopes) & set(audience or SCOPES)
    chosen = set()
    for w in webhooks:
        mine = (
            (w.scope == Scope.SERVER)
            or (w.scope == Scope.USER and user is not None and w.owner_id == user.pk)
            or (w.scope == Scope.NAMESPACE and namespace and w.namespace == namespace)
        )
        if w.active and w.scope in allowed and mine and w.subscribes_to(event_type.name):
            chosen.add(w.pk)
    return chosen


def test_subscribers_match_the_webhook_rules_in_every_combination(django_user_model):
    alice = django_user_model.objects.create_user("alice", "alice@example.com", "x")
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "x")
    owners = {Scope.SERVER: [None], Scope.USER: [alice, bob], Scope.NAMESPACE: [None]}
    for n, (scope, types, active, disabled) in enumerate(
        itertools.product(
            Scope,
            [["a.one"], ["a.two"], ["*"], ["a.one", "a.two"], [], ["a.one.more"]],
            [True, False],
            [False, True],
        )
    ):
        for owner in owners[scope]:
            make_webhook(
                "http://127.0.0.1:9/hook",
                name=f"w{n}",
                scope=scope,
                owner=owner,
                namespace="ns1" if scope == Scope.NAMESPACE and n % 2 else "ns2",
                event_types=types,
                active=active,
                disabled_at=timezone.now() if disabled else None,
            )
    webhooks = list(Webhook.objects.all())
    for scopes, user, namespace, audience in itertools.product(
        [(SERVER,), (USER,), (SERVER, USER, NAMESPACE), (USER, NAMESPACE)],
        [None, alice, bob],
        ["", "ns1", "ns2", "ns3"],
        [None, (USER,), (SERVER, NAMESPACE)],
    ):
        event_type = EventType("a.one", "", scopes)
        got = {
            w.pk
            for w in fanout.subscribers(event_type, getattr(user, "pk", None), namespace, audience)
        }
        assert got == _expected(webhooks, event_type, user, namespace, audience), (
            scopes,
            user,
            namespace,
            audience,
        )


def test_each_delivery_row_gets_the_model_defaults_and_a_fresh_id(receiver):
    live = make_webhook(receiver.url)
    stopped = make_webhook(receiver.url, disabled_at=timezone.now())
    make_webhook(receiver.url, event_types=["other.event"])
    event = emit(TEST_EVENT, {"n": 1})
    rows = {d.webhook_id: d for d in Delivery.objects.filter(event=event)}
    assert set(rows) == {live.pk, stopped.pk}
    pending, skipped = rows[live.pk], rows[stopped.pk]
    assert pending.status == Delivery.Status.PENDING and pending.next_attempt_at is not None
    assert skipped.status == Delivery.Status.SKIPPED and skipped.next_attempt_at is None
    for d in (pending, skipped):
        assert d.attempts == 0 and not d.manual and d.target_url == "" and d.last_error == ""
        assert d.claim_token is None and d.retry_schedule is None and d.completed_at is None
        assert d.max_attempts == 10 and d.created_at == event.created_at
        assert d.id.version == 4
    assert pending.id != skipped.id


def test_sqlite_connections_opened_before_the_first_emit_can_make_delivery_ids(tmp_path):
    """A process that used the database before its first emit (a web request, a
    command) must still find SQLite's UUID function on that connection."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = (
        "import django\n"
        "django.setup()\n"
        "import sys\n"
        "from django.db import connection\n"
        "connection.ensure_connection()\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT hooks_uuid4()')\n"
        "    print(len(cursor.fetchone()[0]))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "webhookhub.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
        "SECRET_KEY": "test",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "32"


def test_a_field_default_is_evaluated_for_every_event(monkeypatch, receiver):
    """The INSERT … SELECT fills the columns it does not set with their defaults; a
    callable default gives each event's deliveries their own value, not one value
    frozen at the first emit() of the process."""
    field = Delivery._meta.get_field("last_error")
    values = iter(["first", "second"])
    monkeypatch.setattr(field, "_get_default", lambda: next(values))
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    emit(TEST_EVENT, {"n": 2})
    assert sorted(Delivery.objects.values_list("last_error", flat=True)) == ["first", "second"]

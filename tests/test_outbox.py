"""emit(): the transactional outbox."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django_q.brokers import get_broker

from hooks import PayloadTooLarge, UnknownEventType, UnsafeURL, emit
from hooks.models import Delivery, Event
from hooks.tools.receiver import Reply
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook, verify
from tests.test_sweeper import broker_task_ids

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


def test_outbox_rollback_sends_nothing(receiver):
    make_webhook(receiver.url)
    queued = get_broker().queue_size()
    with pytest.raises(Boom), transaction.atomic():
        emit(TEST_EVENT, {"n": 1})
        raise Boom
    assert Event.objects.count() == 0 and Delivery.objects.count() == 0
    assert get_broker().queue_size() == queued
    assert deliver_due() == 0
    assert receiver.requests == []


def seen_by_a_worker() -> int:
    """The broker's queue as a worker sees it: from a connection of its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_queue_size_and_close).result()


def _queue_size_and_close() -> int:
    try:
        return get_broker().queue_size()
    finally:
        connection.close()


def test_committed_event_reaches_each_subscriber_once(receiver):
    hooks = [make_webhook(receiver.url, name=f"w{i}") for i in range(3)]
    make_webhook(receiver.url, name="other", event_types=["webhook.test"])
    queued = seen_by_a_worker()
    with transaction.atomic():
        event = emit(TEST_EVENT, {"n": 1})
        assert seen_by_a_worker() == queued  # no worker hears of it before commit
    assert seen_by_a_worker() == queued + 1
    assert deliver_due() == 3
    assert deliver_due() == 0
    assert len(receiver.requests) == 3
    by_hook = {r.headers["X-Webhookhub-Hook"]: r for r in receiver.requests}
    assert set(by_hook) == {str(h.pk) for h in hooks}
    for hook in hooks:
        assert verify(hook, by_hook[str(hook.pk)]) == {"n": 1}
    assert set(event.deliveries.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.skipif(
    bool(settings.REDIS_URL), reason="the database broker writes in the transaction"
)
def test_the_pump_task_commits_with_the_deliveries(receiver, monkeypatch):
    """With the database broker, the task is a row of the emit's own transaction: a
    process that dies between the commit and its on-commit hooks loses no hand-over
    (it used to leave the deliveries to the sweeper, a minute later)."""
    make_webhook(receiver.url)
    broker_task_ids()
    monkeypatch.setattr(
        BaseDatabaseWrapper, "run_and_clear_commit_hooks", lambda self: self.run_on_commit.clear()
    )
    emit(TEST_EVENT, {"n": 1})
    monkeypatch.undo()
    assert broker_task_ids() == [[str(Delivery.objects.get().pk)]]


def test_retries_keep_the_same_webhook_id(receiver):
    answers = iter([500, 502, 200])
    receiver.respond = lambda request: Reply(next(answers))
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    delivery = Delivery.objects.get()
    for _ in range(3):
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
        assert deliver_due() == 1
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {str(delivery.pk)}
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 3
    assert list(delivery.attempt_set.values_list("number", "response_status")) == [
        (1, 500),
        (2, 502),
        (3, 200),
    ]


def test_emit_refuses_unknown_event_type_and_writes_nothing(receiver):
    make_webhook(receiver.url)
    with pytest.raises(UnknownEventType, match="nope.never"):
        emit("nope.never", {})
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "payload, error",
    [
        ({"blob": "x" * 300_000}, PayloadTooLarge),
        ({"when": object()}, TypeError),
        (["not", "an", "object"], TypeError),
    ],
)
def test_emit_refuses_bad_payloads(receiver, settings, payload, error):
    """Too large: over WEBHOOK_MAX_EVENT_BYTES (over WEBHOOK_MAX_PAYLOAD_BYTES, its large
    values are kept apart: tests/test_large_values.py)."""
    settings.WEBHOOK_MAX_EVENT_BYTES = 299_999
    make_webhook(receiver.url)
    with pytest.raises(error):
        emit(TEST_EVENT, payload)
    assert Event.objects.count() == 0 and Delivery.objects.count() == 0


def test_emit_refuses_bad_target_url():
    with pytest.raises(UnsafeURL, match="Only http and https"):
        emit(TEST_EVENT, {}, target_url="file:///etc/passwd")
    assert Event.objects.count() == 0


def test_target_url_delivery_without_webhook(receiver):
    emit(TEST_EVENT, {"job": 1}, target_url=receiver.url)
    assert deliver_due() == 1
    assert receiver.requests[0].body == b'{"job":1}'
    assert "webhook-signature" not in receiver.requests[0].headers


def test_scoped_webhooks_only_get_their_own_events(receiver, django_user_model):
    alice = django_user_model.objects.create(username="alice")
    bob = django_user_model.objects.create(username="bob")
    mine = make_webhook(receiver.url, name="alice", scope="user", owner=alice)
    make_webhook(receiver.url, name="bob", scope="user", owner=bob)
    ns = make_webhook(receiver.url, name="ns", scope="namespace", namespace="acme")
    make_webhook(receiver.url, name="other-ns", scope="namespace", namespace="other")
    emit(TEST_EVENT, {"n": 1}, user=alice, namespace="acme")
    assert set(Delivery.objects.values_list("webhook", flat=True)) == {mine.pk, ns.pk}


def test_disabled_webhook_gets_a_skipped_record_not_a_request(receiver):
    from django.utils import timezone

    make_webhook(receiver.url, disabled_at=timezone.now(), disabled_reason="gone")
    make_webhook(receiver.url, name="inactive", active=False)
    emit(TEST_EVENT, {"n": 1})
    assert list(Delivery.objects.values_list("status", flat=True)) == ["skipped"]
    assert deliver_due() == 0 and receiver.requests == []

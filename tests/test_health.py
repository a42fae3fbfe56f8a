"""Failing endpoints are disabled, their owner is told, and nothing is lost meanwhile."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from hooks import emit
from hooks.models import Delivery, Event, Webhook
from hooks.tools.receiver import Reply
from hooks.worker import health, rows
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, params=["update returning", "update, then read"])
def counting(request, monkeypatch):
    """Every rule holds both where the counters come back with the update and where
    they are read after it."""
    if request.param == "update, then read":
        monkeypatch.setattr(rows, "can_return_from_update", lambda: False)
    elif not rows.can_return_from_update():
        pytest.skip("this database cannot return rows from an UPDATE")
    return request.param


@pytest.fixture
def admin_with_email(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "x")


def test_failing_for_five_days_disables_and_tells_the_admins(receiver, admin_with_email):
    receiver.respond = lambda request: Reply(500)
    webhook = make_webhook(receiver.url)
    Webhook.objects.filter(pk=webhook.pk).update(
        failing_since=timezone.now() - timedelta(days=5, seconds=1)
    )
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    webhook.refresh_from_db()
    assert webhook.is_disabled and "5 days" in webhook.disabled_reason
    assert Event.objects.filter(type="webhook.disabled").count() == 1
    [message] = mail.outbox
    assert message.to == ["root@example.com"] and webhook.name in message.subject
    assert webhook.secret not in message.body
    # Meanwhile: recorded as skipped, not dropped, and not sent.
    emit(TEST_EVENT, {"n": 2})
    assert Delivery.objects.filter(status="skipped").count() == 1
    deliver_due()
    assert len(receiver.requests) == 1


def test_four_days_of_failures_are_not_enough(receiver):
    receiver.respond = lambda request: Reply(500)
    webhook = make_webhook(receiver.url)
    Webhook.objects.filter(pk=webhook.pk).update(failing_since=timezone.now() - timedelta(days=4))
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    webhook.refresh_from_db()
    assert not webhook.is_disabled and webhook.consecutive_failures == 1


def test_consecutive_failed_deliveries_disable_too(receiver, settings, django_user_model):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    settings.WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES = 3
    owner = django_user_model.objects.create(username="ann", email="ann@example.com")
    receiver.respond = lambda request: Reply(500)
    webhook = make_webhook(receiver.url, scope="user", owner=owner)
    for n in range(3):
        emit(TEST_EVENT, {"n": n}, user=owner)
        deliver_due()
    webhook.refresh_from_db()
    assert webhook.is_disabled and "3 deliveries in a row" in webhook.disabled_reason
    assert mail.outbox[0].to == ["ann@example.com"]  # a user webhook's owner is told


def test_a_success_resets_every_counter(receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    answers = iter([500, 200])
    receiver.respond = lambda request: Reply(next(answers))
    webhook = make_webhook(receiver.url)
    for n in range(2):
        emit(TEST_EVENT, {"n": n})
        deliver_due()
    webhook.refresh_from_db()
    assert (webhook.consecutive_failures, webhook.consecutive_failed_deliveries) == (0, 0)


def test_enable_clears_the_state(receiver):
    webhook = make_webhook(receiver.url)
    health.disable(webhook, "test")
    health.enable(webhook)
    assert not webhook.is_disabled and webhook.disabled_reason == ""


def test_failures_counted_by_two_workers_at_once_add_up(receiver):
    """Each worker adds its failures to what the database holds, not to its own stale
    copy, and gets the sum back."""
    webhook = make_webhook(receiver.url)
    stale = [Webhook.objects.get(pk=webhook.pk) for _ in range(2)]
    now = timezone.now()
    first = health.Outcome(ok=False, status=500, delivery_failed=False)
    health.after_attempts(stale[0], [first, first], now)
    health.after_attempts(stale[1], [health.Outcome(False, None, True)], now + timedelta(1))
    assert (stale[1].consecutive_failures, stale[1].consecutive_failed_deliveries) == (3, 1)
    assert stale[1].failing_since == now  # kept from the first failure, as a datetime
    webhook.refresh_from_db()
    assert (webhook.consecutive_failures, webhook.failing_since) == (3, now)

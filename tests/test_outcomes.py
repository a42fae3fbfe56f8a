"""What each receiver answer does to a delivery, and the retry schedule."""

from __future__ import annotations

import random
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from hooks import emit
from hooks.models import Delivery, Event, Webhook
from hooks.tools.receiver import Receiver, Reply
from hooks.worker import retry
from hooks.worker.attempt import deliver_due
from hooks.worker.sweeper import skip_unsendable
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db
SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


def deliver_once(receiver, reply: Reply, **webhook_fields) -> Delivery:
    receiver.respond = lambda request: reply
    make_webhook(receiver.url, **webhook_fields)
    emit(TEST_EVENT, {"n": 1})
    assert deliver_due() == 1
    return Delivery.objects.get()


def due_again(delivery: Delivery) -> None:
    """Move the clock for this delivery: its next attempt is due now."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_success(receiver, status):
    delivery = deliver_once(receiver, Reply(status, body=b""))
    assert delivery.status == "succeeded" and delivery.completed_at
    assert delivery.next_attempt_at is None


def test_redirect_is_not_followed_and_is_retried(receiver):
    delivery = deliver_once(receiver, Reply(302, {"Location": "/elsewhere"}))
    assert len(receiver.requests) == 1 and receiver.requests[0].path == "/hook"
    assert delivery.status == "pending" and delivery.last_response_status == 302


def test_410_fails_for_good_and_disables_the_webhook(receiver):
    delivery = deliver_once(receiver, Reply(410))
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    webhook = delivery.webhook
    webhook.refresh_from_db()
    assert webhook.is_disabled and "410" in webhook.disabled_reason
    announced = Event.objects.get(type="webhook.disabled")
    assert announced.payload["webhook"]["id"] == webhook.pk
    emit(TEST_EVENT, {"n": 2})
    assert Delivery.objects.filter(event__payload__n=2).get().status == "skipped"
    assert deliver_due() == 0 and len(receiver.requests) == 1


def test_pending_deliveries_of_a_webhook_disabled_later_are_skipped(receiver):
    webhook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    webhook.disabled_at = timezone.now()
    webhook.save()
    assert skip_unsendable() == 1  # the sweeper's pass
    assert Delivery.objects.get().status == "skipped" and receiver.requests == []


def test_a_delivery_claimed_just_as_its_webhook_stops_is_skipped(receiver):
    from hooks.worker import claims

    webhook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    claims.claim(None, 10, lease=60)  # the worker's list of stopped webhooks is now fresh...
    Delivery.objects.update(claim_token=None, claimed_until=None, attempts=0)
    Webhook.objects.filter(pk=webhook.pk).update(active=False)  # ...and now stale
    assert deliver_due() == 0
    delivery = Delivery.objects.get()
    assert delivery.status == "skipped" and delivery.attempts == 0 and receiver.requests == []


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured(receiver, status):
    before = timezone.now()
    delivery = deliver_once(receiver, Reply(status, {"Retry-After": "7200"}))
    assert delivery.status == "pending"
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 7200 <= wait < 7200 + 60


def test_retry_after_http_date_is_honoured_and_clamped(receiver):
    from email.utils import format_datetime

    in_three_days = timezone.now() + timedelta(days=3)
    delivery = deliver_once(
        receiver, Reply(503, {"Retry-After": format_datetime(in_three_days, usegmt=True)})
    )
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 86000 < wait <= 86400


def test_retry_after_never_shortens_the_schedule(receiver):
    delivery = deliver_once(receiver, Reply(429, {"Retry-After": "0"}))
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 5 * 0.8 - 1 <= wait <= 5 * 1.2


def test_server_errors_follow_the_schedule_until_exhausted(receiver):
    receiver.respond = lambda request: Reply(500)
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    delivery = Delivery.objects.get()
    for attempt in range(1, len(SCHEDULE) + 1):
        assert deliver_due() == 1
        delivery.refresh_from_db()
        if attempt == len(SCHEDULE):
            break
        assert delivery.status == "pending" and delivery.attempts == attempt
        last = delivery.attempt_set.get(number=attempt).started_at
        wait = (delivery.next_attempt_at - last).total_seconds()
        expected = SCHEDULE[attempt]
        assert expected * 0.8 - 1 <= wait <= expected * 1.2 + 1, (attempt, wait)
        assert deliver_due() == 0  # not due before its time
        due_again(delivery)
    assert delivery.status == "failed" and delivery.attempts == len(SCHEDULE)
    assert delivery.attempt_set.count() == len(SCHEDULE) == len(receiver.requests)
    assert deliver_due() == 0


def test_schedule_is_configurable(receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 1]
    receiver.respond = lambda request: Reply(500)
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    due_again(Delivery.objects.get())
    deliver_due()
    assert Delivery.objects.get().status == "failed" and len(receiver.requests) == 2


def test_jitter_stays_within_twenty_percent():
    rng = random.Random(7)
    delays = [retry.delay_before(3, SCHEDULE, rng) for _ in range(2000)]
    assert min(delays) >= 300 * 0.8 and max(delays) <= 300 * 1.2
    assert max(delays) - min(delays) > 100  # it really varies
    assert retry.delay_before(len(SCHEDULE) + 1, SCHEDULE) is None


def test_receiver_that_is_down_is_recorded_and_retried():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    make_webhook(f"http://127.0.0.1:{port}/hook")
    emit(TEST_EVENT, {"n": 1})
    assert deliver_due() == 1
    delivery = Delivery.objects.get()
    attempt = delivery.attempt_set.get()
    assert "Could not connect" in attempt.error and attempt.response_status is None
    assert delivery.status == "pending" and delivery.webhook.consecutive_failures == 1


def test_receiver_that_hangs_times_out():
    with Receiver() as hanging:
        hanging.respond = lambda request: hanging.released.wait(30) and None
        make_webhook(hanging.url, timeout=0.5)
        emit(TEST_EVENT, {"n": 1})
        assert deliver_due() == 1
    attempt = Delivery.objects.get().attempt_set.get()
    assert "did not answer within 0.5s" in attempt.error
    assert 400 <= attempt.duration_ms < 5000


def test_response_body_is_capped_at_64_kib(receiver):
    delivery = deliver_once(receiver, Reply(200, body=b"x" * 200_000))
    attempt = delivery.attempt_set.get()
    assert len(attempt.response_body) == 64 * 1024
    assert delivery.status == "succeeded"


def test_success_resets_the_failure_count(receiver):
    answers = iter([500, 200])
    receiver.respond = lambda request: Reply(next(answers))
    webhook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    webhook.refresh_from_db()
    assert webhook.consecutive_failures == 1 and webhook.failing_since
    due_again(Delivery.objects.get())
    deliver_due()
    webhook.refresh_from_db()
    assert webhook.consecutive_failures == 0 and webhook.failing_since is None

"""Operating webhooks from the admin: test pings, secret rotation, re-enabling, replay."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hooks import emit
from hooks.models import Delivery, Webhook
from hooks.tools.receiver import Receiver, Reply
from hooks.worker import health
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook, verify

pytestmark = pytest.mark.django_db


def url(name: str, webhook: Webhook) -> str:
    return reverse(f"admin:hooks_webhook_{name}", args=[webhook.pk])


def test_send_test_event_shows_the_answer(admin_client, receiver):
    receiver.respond = lambda request: Reply(200, body=b"pong\nline two")
    webhook = make_webhook(receiver.url, event_types=[])
    page = admin_client.post(url("test", webhook), follow=True).content.decode()
    assert "HTTP 200 in" in page and "pong\nline two" in page
    assert verify(webhook, receiver.requests[0])["event"] == "test"
    assert receiver.requests[0].headers["X-Webhookhub-Event"] == "webhook.test"


def test_send_test_event_to_a_receiver_that_is_down(admin_client):
    with Receiver() as gone:
        target = gone.url
    webhook = make_webhook(target)  # stopped: nobody listens there any more
    page = admin_client.post(url("test", webhook), follow=True).content.decode()
    assert "Could not connect" in page


@pytest.mark.parametrize(
    "answer, expected", [("hang", "did not answer within 0.5s"), (410, "HTTP 410")]
)
def test_send_test_event_reports_failures(admin_client, receiver, answer, expected):
    if answer == "hang":
        receiver.respond = lambda request: receiver.released.wait(30) and None
    else:
        receiver.respond = lambda request: Reply(answer)
    webhook = make_webhook(receiver.url, timeout=0.5)
    page = admin_client.post(url("test", webhook), follow=True).content.decode()
    assert expected in page


def test_a_successful_ping_re_enables_and_offers_replay(admin_client, receiver):
    webhook = make_webhook(receiver.url)
    health.disable(webhook, "It was down.")
    page = admin_client.post(url("test", webhook), follow=True).content.decode()
    webhook.refresh_from_db()
    assert not webhook.is_disabled
    assert "enabled again" in page and url("replay", webhook) in page


def test_rotate_secret_shows_the_new_secret_once_and_keeps_the_old_signing(admin_client, receiver):
    webhook = make_webhook(receiver.url)
    old = webhook.secret
    page = admin_client.post(url("rotate", webhook), follow=True).content.decode()
    webhook.refresh_from_db()
    assert webhook.secret != old and webhook.secret in page and old not in page
    assert webhook.secret not in admin_client.get(url("change", webhook)).content.decode()
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    from standardwebhooks.webhooks import Webhook as Verifier

    Verifier(old).verify(receiver.requests[0].body, receiver.requests[0].headers)
    verify(webhook, receiver.requests[0])


def test_re_enable_leads_to_a_replay_of_the_disabled_period(admin_client, receiver):
    webhook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 0})  # before the trouble
    deliver_due()
    health.disable(webhook, "It was down.")
    for n in range(1, 4):
        emit(TEST_EVENT, {"n": n})
    assert Delivery.objects.filter(status="skipped").count() == 3
    response = admin_client.post(url("enable", webhook))
    assert response.status_code == 302 and "replay" in response["Location"]
    page = admin_client.get(response["Location"]).content.decode()
    assert "<strong>3</strong> deliveries match" in page
    form = {
        "since": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
        "statuses": ["failed", "skipped"],
    }
    page = admin_client.post(url("replay", webhook), form).content.decode()
    assert "<strong>4</strong> deliveries match" not in page  # the delivered one is not replayable
    admin_client.post(url("replay", webhook), {**form, "confirm": "1"})
    assert deliver_due() == 3
    assert sorted(json.loads(r.body)["n"] for r in receiver.requests) == [0, 1, 2, 3]


def test_replay_refuses_a_backwards_period(admin_client, receiver):
    webhook = make_webhook(receiver.url)
    page = admin_client.post(
        url("replay", webhook),
        {
            "since": "2026-02-01 00:00",
            "until": "2026-01-01 00:00",
            "statuses": ["failed"],
            "confirm": "1",
        },
    ).content.decode()
    assert "must be before" in page


def test_template_preview_for_the_example_payload(admin_client, receiver):
    webhook = make_webhook(receiver.url, data_template='{"msg": "thing is %thing%"}')
    page = admin_client.get(url("change", webhook)).content.decode()
    assert "thing is 1" in page

"""Retention in two periods: bodies (payloads, large values, attempts' request and
response bodies) expire after WEBHOOK_BODY_RETENTION_DAYS, the rest of the history after
WEBHOOK_HISTORY_DAYS; what lost its body says so everywhere and is never sent again."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import hooks
from hooks.models import Attempt, Delivery, Event, EventValue, LargeValue, Scope
from hooks.tools import redelivery, retention
from hooks.tools.receiver import Reply
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook
from tests.test_api_webhooks import Api, person

pytestmark = pytest.mark.django_db

SECRET_WORD = "tangerine-7"  # in each body, so a page that still shows one is caught


@pytest.fixture(autouse=True)
def periods(settings):
    settings.WEBHOOK_HISTORY_DAYS = 30
    settings.WEBHOOK_BODY_RETENTION_DAYS = 7
    settings.WEBHOOK_FEED_SETTLE_SECONDS = 0
    settings.WEBHOOK_FAILING_AFTER_ATTEMPTS = 0  # no webhook.failing events of its own


@pytest.fixture
def world(receiver):
    from namespaces.models import Namespace

    owner = person("olga")
    space = Namespace.objects.create(name="acme", path="acme", owner=owner)
    hook = make_webhook(receiver.url, scope=Scope.NAMESPACE, namespace=space.key, name="ci")
    receiver.respond = lambda request: Reply(200, body=f'{{"seen": "{SECRET_WORD}"}}'.encode())
    return {"owner": owner, "space": space, "hook": hook, "receiver": receiver}


def sent(world, n: int, age_days: float, big: str = "") -> Delivery:
    """A delivery made `age_days` ago and answered by the receiver."""
    payload = {"n": n, "word": SECRET_WORD} | ({"log": big} if big else {})
    event = hooks.emit(TEST_EVENT, payload, namespace=world["space"].key)
    deliver_due()
    Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    return Delivery.objects.get(event=event)


def snapshot(delivery: Delivery) -> tuple:
    delivery.refresh_from_db()
    attempts = list(Attempt.objects.filter(delivery=delivery).values_list("pk", "number"))
    return (delivery.status, delivery.attempts, delivery.max_attempts, delivery.manual,
            delivery.next_attempt_at, delivery.completed_at, attempts)  # fmt: skip


def test_bodies_expire_after_their_period_and_the_metadata_after_its_own(world, settings):
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 20_000
    old = sent(world, 1, age_days=10, big="x" * 30_000)  # its log is kept apart
    recent = sent(world, 2, age_days=2)
    pending = sent(world, 3, age_days=10)
    Delivery.objects.filter(pk=pending.pk).update(status="pending")  # being retried
    assert EventValue.objects.count() == 1 and LargeValue.objects.count() == 1
    before = Attempt.objects.get(delivery=old)
    assert SECRET_WORD in before.request_body and SECRET_WORD in before.response_body

    assert retention.prune_by_setting() == {"events": 0, "bodies": 1}

    event = Event.objects.get(pk=old.event_id)
    assert event.payload == {} and event.stored_apart is None and event.body_expired_at
    after = Attempt.objects.get(delivery=old)
    assert after.request_body == "" and after.response_body == ""
    # The metadata stays: outcome, times, status, headers as sent, the URL.
    assert (after.response_status, after.url, after.started_at, after.succeeded) == (
        before.response_status, before.url, before.started_at, before.succeeded)  # fmt: skip
    assert after.request_headers == before.request_headers and after.request_headers
    assert after.response_headers == before.response_headers
    assert Delivery.objects.get(pk=old.pk).status == "succeeded"
    assert not EventValue.objects.exists()
    # The large value goes once no event carries it and it is older than a transaction
    # may share it for (hooks.outbox.event.SHARED_FOR).
    LargeValue.objects.update(created_at=timezone.now() - timedelta(days=10))
    assert retention.expire_bodies(timezone.now() - timedelta(days=7))["large_values"] == 1
    for kept in (recent, pending):  # too recent, or still being tried
        assert SECRET_WORD in Attempt.objects.get(delivery=kept).request_body
        assert Event.objects.get(pk=kept.event_id).body_expired_at is None

    assert retention.prune_by_setting() == {"events": 0, "bodies": 0}  # done once
    Event.objects.filter(pk=old.event_id).update(created_at=timezone.now() - timedelta(days=31))
    assert retention.prune_by_setting() == {"events": 1, "bodies": 0}
    assert not Delivery.objects.filter(pk=old.pk).exists()
    assert Delivery.objects.filter(pk__in=[recent.pk, pending.pk]).count() == 2


def test_zero_keeps_bodies_as_long_as_the_history(world, settings):
    settings.WEBHOOK_BODY_RETENTION_DAYS = 0
    old = sent(world, 1, age_days=20)
    assert retention.prune_by_setting() == {"events": 0, "bodies": 0}
    assert SECRET_WORD in Attempt.objects.get(delivery=old).request_body


def test_a_redelivery_of_an_expired_delivery_is_refused_and_changes_nothing(world, admin_client):
    old = sent(world, 1, age_days=10)
    Delivery.objects.filter(pk=old.pk).update(status="failed")
    retention.prune_by_setting()
    before = snapshot(old)
    hook, requests_seen = world["hook"], len(world["receiver"].requests)

    answer = Api(world["owner"])("POST", f"/webhooks/{hook.pk}/deliveries/{old.pk}/redeliver")
    assert answer.status_code == 410
    assert "body expired on" in answer.json()["error"]
    assert "cannot be sent again" in answer.json()["error"]

    owner = Client()
    owner.force_login(world["owner"])
    args = {"path": "acme", "pk": hook.pk, "delivery_id": old.pk}
    page = owner.post(reverse("namespaces:redeliver", kwargs=args), follow=True)
    assert "cannot be sent again" in page.content.decode()

    page = admin_client.post(reverse("admin:hooks_delivery_redeliver", args=[old.pk]), follow=True)
    assert "cannot be sent again" in page.content.decode()

    from django.db import transaction

    with transaction.atomic():  # a bulk redelivery leaves it out
        assert redelivery.redeliver(Delivery.objects.filter(pk=old.pk)) == 0
    assert hooks.replay(hook) == 0
    err = io.StringIO()
    call_command("webhooks", "replay", "--webhook", str(hook.pk), stdout=io.StringIO(), stderr=err)
    assert "1 of them cannot be sent again" in err.getvalue()

    assert deliver_due() == 0
    assert snapshot(old) == before
    assert len(world["receiver"].requests) == requests_seen


def test_pages_the_api_and_the_feed_say_the_body_expired(world, admin_client):
    old = sent(world, 1, age_days=10)
    retention.prune_by_setting()
    hook, when = world["hook"], Event.objects.get(pk=old.event_id).body_expired_at
    stamp = f"{when:%Y-%m-%d %H:%M}"

    owner = Client()
    owner.force_login(world["owner"])
    args = {"path": "acme", "pk": hook.pk, "delivery_id": old.pk}
    page = owner.get(reverse("namespaces:delivery", kwargs=args)).content.decode()
    assert f"Body expired on {stamp} UTC" in page and "(empty body)" not in page
    listing = owner.get(reverse("namespaces:webhook", kwargs={"path": "acme", "pk": hook.pk}))
    assert reverse("namespaces:redeliver", kwargs=args) not in listing.content.decode()

    page = admin_client.get(reverse("admin:hooks_delivery_change", args=[old.pk])).content.decode()
    assert f"body expired on {stamp} UTC" in page and SECRET_WORD not in page
    page = admin_client.get(reverse("admin:hooks_event_change", args=[old.event_id]))
    assert f"body expired on {stamp} UTC" in page.content.decode()

    api = Api(world["owner"])
    detail = api("GET", f"/webhooks/{hook.pk}/deliveries/{old.pk}").json()
    assert detail["body_expired_at"] and detail["attempts"][0]["request_body"] == ""
    assert detail["attempts"][0]["response_status"] == 200
    item = api("GET", f"/webhooks/{hook.pk}/feed").json()["deliveries"][0]
    assert item["body"] is None and item["signed_headers"] is None
    assert f"The body expired on {stamp} UTC" in item["body_missing"]
    assert item["outcome"] == "succeeded" and item["headers"]


def test_a_kept_body_shows_as_before(world, admin_client):
    recent = sent(world, 1, age_days=1)
    retention.prune_by_setting()
    detail = Api(world["owner"])("GET", f"/webhooks/{world['hook'].pk}/deliveries/{recent.pk}")
    body = detail.json()
    assert body["body_expired_at"] is None
    assert json.loads(body["attempts"][0]["request_body"])["word"] == SECRET_WORD
    page = admin_client.get(reverse("admin:hooks_event_change", args=[recent.event_id]))
    assert SECRET_WORD in page.content.decode() and "body expired" not in page.content.decode()


def test_the_prune_command_empties_bodies_on_request(world):
    old = sent(world, 1, age_days=10)
    out = io.StringIO()
    call_command("webhooks", "prune", "--days", "30", "--body-days", "7", stdout=out,
                 stderr=io.StringIO())  # fmt: skip
    assert "Emptied the bodies of 1 events older than 7 days (1 attempts" in out.getvalue()
    assert Event.objects.get(pk=old.event_id).body_expired_at is not None
    for bad in ("0", "31"):
        with pytest.raises(CommandError, match="--body-days must be between 1 and --days"):
            call_command("webhooks", "prune", "--days", "30", "--body-days", bad)


@pytest.mark.parametrize(
    "history, body, message",
    [
        (30, -1, "WEBHOOK_BODY_RETENTION_DAYS must be a whole number of days, 0 or more"),
        (-1, 7, "WEBHOOK_HISTORY_DAYS must be a whole number of days, 0 or more"),
        (30, 2.5, "WEBHOOK_BODY_RETENTION_DAYS must be a whole number"),
        (7, 30, r"WEBHOOK_BODY_RETENTION_DAYS \(30\) must not be longer than WEBHOOK_HISTORY_DAYS"),
    ],
)
def test_bad_retention_settings_stop_start_up(settings, history, body, message):
    settings.WEBHOOK_HISTORY_DAYS, settings.WEBHOOK_BODY_RETENTION_DAYS = history, body
    with pytest.raises(SystemCheckError, match=message):
        call_command("check")


@pytest.mark.parametrize("history, body", [(30, 7), (30, 30), (0, 90), (30, 0)])
def test_good_retention_settings_pass(settings, history, body):
    settings.WEBHOOK_HISTORY_DAYS, settings.WEBHOOK_BODY_RETENTION_DAYS = history, body
    call_command("check")

"""Early warnings, recovery notices and operator events: each stage of a failing episode
is announced once (email to the owner, unless snoozed; an event to operators' server
webhooks, e.g. a Slack sink), delivery.exhausted and webhook.changed reach them too, an
event about a webhook never goes to that webhook, and failing sinks cannot loop."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import checks, mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from hooks import SecretChange, configure_webhook, emit, send_test, snooze_alerts
from hooks.catalog import OPERATOR_EVENTS
from hooks.models import AlertStage, Delivery, Event, Webhook
from hooks.tools.configure import GENERATE
from hooks.tools.receiver import Receiver, Reply
from hooks.worker import alerts, health
from hooks.worker.attempt import deliver_due
from namespaces.models import Namespace
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_episodes(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]  # each delivery: one attempt, then it gives up
    settings.WEBHOOK_FAILING_AFTER_ATTEMPTS = 3


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "x")


@pytest.fixture
def sink():
    """An operator's Slack-format alert sink on 127.0.0.1, answering 200."""
    with Receiver() as receiver:
        receiver.webhook = make_webhook(
            receiver.url, name="alerts", format="slack", event_types=list(OPERATOR_EVENTS)
        )
        yield receiver


def drain(most: int = 100) -> int:
    """Deliver until nothing is due (every delivery is immediate here); the rounds."""
    for rounds in range(most):
        if not deliver_due():
            return rounds
    raise AssertionError(f"still delivering after {most} rounds")


def texts(receiver: Receiver) -> list[str]:
    return [json.loads(r.body)["text"] for r in receiver.requests]


def fail_then_recover(receiver: Receiver, webhook: Webhook, failures: int) -> None:
    receiver.respond = lambda request: Reply(500)
    for n in range(failures):
        emit_test(n)
    receiver.respond = lambda request: Reply(200)
    emit_test(failures)


def emit_test(n: int) -> None:
    emit(TEST_EVENT, {"n": n})
    drain()


def test_failing_and_recovered_reach_the_slack_sink_and_the_admins_once(receiver, sink, root):
    webhook = make_webhook(receiver.url)
    fail_then_recover(receiver, webhook, failures=5)
    failing = [t for t in texts(sink) if "is failing" in t]
    assert failing == [
        "Webhook receiver is failing (3 attempts in a row); disabled in about 120 h unless "
        "it recovers"
    ]
    assert [t for t in texts(sink) if "recovered" in t] == [
        "Webhook receiver recovered after 5 failed attempts"
    ]
    assert Event.objects.filter(type="webhook.failing").count() == 1
    assert Event.objects.filter(type="webhook.recovered").count() == 1
    subjects = [m.subject for m in mail.outbox]
    assert subjects == [
        "[webhookhub] Webhook “receiver” is failing",
        "[webhookhub] Webhook “receiver” recovered",
    ]
    assert mail.outbox[0].to == ["root@example.com"]
    assert "disabled in about 120 h" in mail.outbox[0].body
    webhook.refresh_from_db()
    assert webhook.alert_stage == AlertStage.RECOVERED and webhook.consecutive_failures == 0


def test_a_new_episode_is_announced_again(receiver, sink):
    webhook = make_webhook(receiver.url)
    fail_then_recover(receiver, webhook, failures=3)
    fail_then_recover(receiver, webhook, failures=4)
    assert len([t for t in texts(sink) if "is failing" in t]) == 2
    assert len([t for t in texts(sink) if "recovered" in t]) == 2


def test_fewer_failures_than_the_setting_announce_nothing(receiver, sink):
    webhook = make_webhook(receiver.url)
    fail_then_recover(receiver, webhook, failures=2)
    assert not [t for t in texts(sink) if "failing" in t or "recovered" in t]
    assert not mail.outbox


def test_the_forecast_counts_down_from_the_failing_for_days_rule(receiver, sink):
    webhook = make_webhook(receiver.url)
    Webhook.objects.filter(pk=webhook.pk).update(
        failing_since=timezone.now() - timedelta(days=4), consecutive_failures=2
    )
    receiver.respond = lambda request: Reply(503)
    emit_test(1)
    [event] = Event.objects.filter(type="webhook.failing")
    assert 23.9 <= event.payload["disabled_in_hours"] <= 24.0
    assert event.payload["last_status"] == 503


def test_exhausted_deliveries_reach_the_sink(receiver, sink):
    make_webhook(receiver.url)
    receiver.respond = lambda request: Reply(500)
    emit_test(1)
    [event] = Event.objects.filter(type="delivery.exhausted")
    assert event.payload["event_type"] == TEST_EVENT and event.payload["last_status"] == 500
    assert texts(sink) == [f"A {TEST_EVENT} delivery to receiver gave up after 1 attempts"]


def test_snooze_silences_the_owners_emails_not_the_operators_events(receiver, sink, root):
    webhook = make_webhook(receiver.url)
    snooze_alerts(webhook, 7)
    fail_then_recover(receiver, webhook, failures=3)
    assert not mail.outbox
    assert any("is failing" in t for t in texts(sink))
    with pytest.raises(ValueError):
        snooze_alerts(webhook, 3)
    webhook.refresh_from_db()
    assert webhook.alerts_snoozed_until > timezone.now() + timedelta(days=6)


def test_an_event_about_a_webhook_never_goes_to_it(sink):
    """The sink itself fails: it hears nothing about itself, and nothing loops."""
    Webhook.objects.filter(pk=sink.webhook.pk).update(event_types=["*"])
    sink.respond = lambda request: Reply(500)
    for n in range(4):
        emit_test(n)
    about_sink = Event.objects.filter(
        type__in=OPERATOR_EVENTS, payload__webhook__id=sink.webhook.pk
    )
    assert about_sink.filter(type="webhook.failing").count() == 1
    assert not Delivery.objects.filter(event__in=about_sink, webhook=sink.webhook).exists()


def test_two_failing_slack_sinks_do_not_alert_about_each_other_forever():
    with Receiver() as a, Receiver() as b:
        for r in (a, b):
            r.respond = lambda request: Reply(500)
            make_webhook(r.url, name=f"sink {r.port}", format="slack", event_types=["*"])
        for n in range(5):
            emit(TEST_EVENT, {"n": n})
        drain(most=60)  # ends: an operator event's delivery that gives up raises nothing
    assert Event.objects.filter(type="webhook.failing").count() == 2
    assert Event.objects.filter(type="delivery.exhausted").count() == 10  # the test events'
    assert Delivery.objects.filter(status="pending").count() == 0


def test_webhook_changed_names_the_fields_and_who_never_the_secret(receiver, sink, root):
    webhook = make_webhook(receiver.url)
    saved = configure_webhook(
        webhook, {"url": receiver.url + "v2", "secret": SecretChange(GENERATE), "name": "x"}, root
    )
    configure_webhook(webhook, {"name": "renamed"}, root)  # not a watched field: no event
    configure_webhook(sink.webhook, {"active": True, "url": sink.url + "/"}, root)  # itself
    drain()
    [event] = Event.objects.filter(type="webhook.changed", payload__webhook__id=webhook.pk)
    assert event.payload["changed"] == ["url", "secret"] and event.payload["by"]["id"] == root.pk
    assert saved.new_secret not in json.dumps(event.payload)
    assert texts(sink) == ["Webhook x changed by root: url, secret"]
    assert not Delivery.objects.filter(
        webhook=sink.webhook, event__payload__webhook__id=sink.webhook.pk
    ).exists()


def test_the_admin_page_shows_the_stage_and_snoozes(client, root, sink, receiver):
    webhook = make_webhook(receiver.url, active=True)
    client.force_login(root)
    page = client.get(reverse("admin:hooks_webhook_change", args=[webhook.pk]))
    assert 'id="health-state"' in page.content.decode()
    url = reverse("admin:hooks_webhook_snooze", args=[webhook.pk])
    assert client.post(url, {"days": "x"}).status_code == 302
    webhook.refresh_from_db()
    assert webhook.alerts_snoozed_until is None  # bad input changes nothing
    client.post(url, {"days": "1"})
    webhook.refresh_from_db()
    assert webhook.alerts_snoozed_until is not None


def test_a_namespace_webhook_tells_the_namespace_owner_and_its_page_shows_it(
    client, receiver, django_user_model
):
    owner = django_user_model.objects.create_user("bo", "bo@example.com", "pw")
    space = Namespace.objects.create(name="acme", path="acme", owner=owner)
    webhook = make_webhook(receiver.url, scope="namespace", namespace=space.key)
    receiver.respond = lambda request: Reply(500)
    for n in range(3):
        emit(TEST_EVENT, {"n": n}, namespace=space.key)
        drain()
    [message] = mail.outbox
    assert message.to == ["bo@example.com"] and "is failing" in message.subject
    assert f"/namespaces/acme/webhooks/{webhook.pk}/" in message.body  # their page
    client.force_login(owner)
    page = client.get(reverse("namespaces:webhook", args=[space.path, webhook.pk])).content
    assert "failing: the last 3 attempts failed; disabled in about" in page.decode()
    listing = client.get(reverse("namespaces:webhooks", args=[space.path])).content.decode()
    assert ">failing<" in listing
    client.post(reverse("namespaces:snooze_webhook", args=[space.path, webhook.pk]), {"days": "7"})
    webhook.refresh_from_db()
    assert webhook.alerts_snoozed_until is not None


def test_the_account_page_shows_the_users_webhook_stage(client, receiver, django_user_model):
    ann = django_user_model.objects.create_user("ann", "ann@example.com", "pw")
    webhook = make_webhook(receiver.url, scope="user", owner=ann)
    receiver.respond = lambda request: Reply(500)
    for n in range(3):
        emit(TEST_EVENT, {"n": n}, user=ann)
        drain()
    assert mail.outbox[0].to == ["ann@example.com"]
    assert "/accounts/settings/" in mail.outbox[0].body  # where she sees it
    client.force_login(ann)
    page = client.get(reverse("accounts:settings")).content.decode()
    assert "failing: the last 3 attempts failed" in page
    client.post(reverse("accounts:snooze_alerts"), {"days": "1"})
    webhook.refresh_from_db()
    assert webhook.alerts_snoozed_until is not None


def test_an_attempt_costs_no_more_queries_between_stages(receiver, sink):
    """The stage rides on the counters' own statement: a success on a healthy webhook is
    no query, a failure is the one UPDATE that counts it, before and after `failing`."""
    webhook = make_webhook(receiver.url)
    now = timezone.now()
    ok, failed = health.Outcome(True, 200, False), health.Outcome(False, 500, False)
    with CaptureQueriesContext(connection) as queries:
        health.after_attempts(webhook, [ok], now)
    assert len(queries) == 0
    with CaptureQueriesContext(connection) as queries:
        health.after_attempts(webhook, [failed], now)  # 1 of 3
    assert len(queries) == 1
    health.after_attempts(webhook, [failed, failed], now)  # the 3rd: failing, announced
    assert webhook.alert_stage == AlertStage.FAILING
    with CaptureQueriesContext(connection) as queries:
        health.after_attempts(webhook, [failed], now)
    assert len(queries) == 1


def test_a_successful_test_event_ends_the_episode(receiver, sink):
    webhook = make_webhook(receiver.url)
    receiver.respond = lambda request: Reply(500)
    for n in range(3):
        emit_test(n)
    receiver.respond = lambda request: Reply(200)
    webhook.refresh_from_db()  # as the page that sends it reads it
    assert send_test(webhook).ok
    drain()
    assert [t for t in texts(sink) if "recovered" in t] == [
        "Webhook receiver recovered after 3 failed attempts"
    ]


def test_two_workers_crossing_the_line_at_once_announce_it_once(receiver, sink):
    """Both counted the third failure before either moved the stage (their copies say
    "not failing"): only the one whose UPDATE moves it announces it."""
    webhook = make_webhook(receiver.url)
    Webhook.objects.filter(pk=webhook.pk).update(consecutive_failures=3)
    stale = [Webhook.objects.get(pk=webhook.pk) for _ in range(2)]
    for copy in stale:
        alerts.after_failures(copy, timezone.now(), 500, 3)
    assert Event.objects.filter(type="webhook.failing").count() == 1


def test_a_namespace_owner_changing_a_webhook_on_its_page_is_named(
    client, receiver, sink, django_user_model
):
    owner = django_user_model.objects.create_user("bo", "bo@example.com", "pw")
    space = Namespace.objects.create(name="acme", path="acme", owner=owner)
    client.force_login(owner)
    data = {"url": receiver.url, "verify_tls": "on", "active": "on", "all_events": "on"}
    assert client.post(f"/namespaces/{space.path}/webhooks/new/", data).status_code == 302
    webhook = Webhook.objects.get(namespace=space.key)
    page = f"/namespaces/{space.path}/webhooks/{webhook.pk}/"
    assert client.post(page, {**data, "url": receiver.url + "v2"}).status_code == 302
    drain()
    created, changed = Event.objects.filter(type="webhook.changed").order_by("created_at")
    assert created.payload["created"] and changed.payload["changed"] == ["url"]
    assert changed.payload["by"] == {"id": owner.pk, "username": "bo"}
    assert f"Webhook {webhook.name} changed by bo: url" in texts(sink)


def test_a_named_server_hooks_new_url_is_announced(admin_client, admin_user, receiver, sink):
    page = reverse("hooks_server_configuration")
    admin_client.post(page, {"signup-url": receiver.url, "signup-data": ""})
    drain()
    [event] = Event.objects.filter(type="webhook.changed")
    assert event.payload["changed"] == ["url"] and event.payload["by"]["id"] == admin_user.pk


def test_without_the_days_rule_the_forecast_says_so(receiver, sink, settings):
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 0
    make_webhook(receiver.url)
    receiver.respond = lambda request: Reply(500)
    for n in range(3):
        emit_test(n)
    [event] = Event.objects.filter(type="webhook.failing")
    assert event.payload["disabled_in_hours"] is None
    assert "not disabled by time" in [t for t in texts(sink) if "is failing" in t][0]


def test_a_bad_failing_setting_stops_the_start(settings):
    settings.WEBHOOK_FAILING_AFTER_ATTEMPTS = -1
    errors = checks.run_checks()
    assert [e.id for e in errors if "WEBHOOK_FAILING_AFTER_ATTEMPTS" in e.msg] == ["hooks.E012"]

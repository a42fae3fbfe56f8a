"""Per-webhook pacing (hooks.worker.pacing): the shared bucket, the chat platforms'
defaults, pacing across two real qclusters, a receiver's 429 pausing its webhook for
every delivery, the pace on the pages, and bad input refused everywhere."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from hooks import emit
from hooks.models import Attempt, BodyFormat, Delivery, Webhook, WebhookPace
from hooks.tools.configure import configure_webhook
from hooks.tools.receiver import Reply
from hooks.worker import pacing, wakeup
from hooks.worker.pump import Pump
from hooks.worker.ticker import Ticker
from tests.conftest import TEST_EVENT, make_webhook, verify
from tests.test_e2e_qcluster import ROOT, wait_until, worker_env
from tests.test_sweeper import broker_task_ids
from tests.test_webhook_rules import NamespacePage, logged_in, person

pytestmark = pytest.mark.django_db(transaction=True)


def admin_page(webhook: Webhook) -> str:
    """The webhook's admin page, as staff read it."""
    staff = person(f"root{Webhook.objects.count()}", is_staff=True, is_superuser=True)
    page = logged_in(staff).get(reverse("admin:hooks_webhook_change", args=[webhook.pk]))
    return page.content.decode()


# --- the bucket --------------------------------------------------------------------------
def test_a_bucket_refills_at_its_rate_up_to_its_burst():
    now = timezone.now()
    pace = WebhookPace(rate=2.0, burst=3, tokens=0.5, refilled_at=now)
    assert pacing.refill(pace, now + timedelta(seconds=0.5)) == pytest.approx(1.5)
    assert pacing.refill(pace, now + timedelta(seconds=10)) == 3.0  # no more than the burst
    assert pacing.refill(pace, now - timedelta(seconds=1)) == 0.5  # a clock behind adds nothing
    assert pacing.next_token(0.5, 2.0) == pytest.approx(0.25)
    pace.learned_rate = 1.0  # slowed down by its receiver: refills at the learned rate
    assert pacing.refill(pace, now + timedelta(seconds=0.5)) == pytest.approx(1.0)
    assert pacing.refill(WebhookPace(rate=None, burst=1, refilled_at=now), now) == float("inf")


def test_discord_and_slack_get_their_platforms_limits_unless_the_owner_set_a_rate():
    discord = make_webhook("https://discord.com/api/webhooks/1/abc")
    slack = make_webhook("https://hooks.slack.com/services/T/B/x")
    explicit = make_webhook("https://chat.example.com/in", format=BodyFormat.SLACK)
    plain = make_webhook("https://example.com/in")
    own = make_webhook("https://discord.com/api/webhooks/2/abc", rate_limit=0.5)
    assert pacing.limits_of(discord) == pacing.Limits(2.0, 1, None)
    assert pacing.limits_of(slack) == pacing.Limits(1.0, 1, None)
    assert pacing.limits_of(explicit) == pacing.Limits(1.0, 1, None)
    assert pacing.limits_of(own) == pacing.Limits(0.5, 1, None)
    assert not pacing.limits_of(plain).any
    paced = {pace.webhook_id: pace for pace in WebhookPace.objects.all()}
    assert set(paced) == {discord.pk, slack.pk, explicit.pk, own.pk}  # saved: in force
    assert (paced[discord.pk].rate, paced[discord.pk].burst) == (2.0, 1)
    configure_webhook(plain, {"rate_limit": 20, "max_in_flight": 3})
    pace = WebhookPace.objects.get(webhook=plain)
    assert (pace.rate, pace.burst, pace.max_in_flight) == (20.0, 20, 3)  # a second's worth
    configure_webhook(plain, {"rate_limit": None, "max_in_flight": None})
    assert plain.pk not in pacing.paced()


def test_no_webhook_paced_costs_a_claim_no_query():
    make_webhook("https://example.com/in")
    pacing.paced()  # read once a second at most
    with CaptureQueriesContext(connection) as queries:
        assert pacing.paced() == {}
    assert len(queries) == 0


# --- pacing in one process ------------------------------------------------------------
def _arrivals(receiver) -> list[float]:
    return sorted(request.received_at for request in receiver.requests)


def test_a_pump_keeps_to_the_rate_and_waits_for_tokens_without_spending_attempts(receiver):
    webhook = make_webhook(receiver.url, rate_limit=10, rate_burst=1)
    for n in range(6):
        emit(TEST_EVENT, {"n": n})
    assert Pump().drain(budget=5) == 6
    assert len(receiver.requests) == 6
    started = sorted(Attempt.objects.values_list("started_at", flat=True))
    seconds = [(t - started[0]).total_seconds() for t in started]
    # 10/s, burst 1: one every 0.1 s. A request may leave its sender thread a little
    # after its claim, so two may come closer; but never more than one a token early:
    # requests i..j span at least (j - i - 1) tenths of a second.
    for i, j in itertools.combinations(range(6), 2):
        assert seconds[j] - seconds[i] > (j - i - 1) * 0.1 - 0.01, seconds
    assert 0.45 < seconds[-1] < 0.7, seconds
    assert list(Delivery.objects.values_list("attempts", flat=True)) == [1] * 6
    assert {verify(webhook, r)["n"] for r in receiver.requests} == set(range(6))


def test_most_in_flight_holds_for_deliveries_claimed_anywhere(receiver):
    webhook = make_webhook(receiver.url, max_in_flight=1)
    for n in range(3):
        emit(TEST_EVENT, {"n": n})
    # Another worker holds one of them right now: none may go until its claim ends.
    held = Delivery.objects.order_by("created_at").first()
    Delivery.objects.filter(pk=held.pk).update(claimed_until=timezone.now() + timedelta(seconds=30))
    assert Pump().drain(budget=0.3) == 0
    assert receiver.requests == []
    Delivery.objects.filter(pk=held.pk).update(claimed_until=None)
    assert Pump().drain(budget=3) == 3
    assert webhook.deliveries.filter(status="succeeded").count() == 3


def _a_second_passes(webhook: Webhook) -> None:
    """The webhook's bucket as if a second had passed since it was last taken from."""
    WebhookPace.objects.filter(webhook=webhook).update(
        refilled_at=F("refilled_at") - timedelta(seconds=1)
    )


# --- no worker waits for a token ----------------------------------------------------------
def test_a_pump_with_nothing_else_to_send_leaves_a_later_token_to_the_ticker(receiver):
    webhook = make_webhook(receiver.url, rate_limit=1, rate_burst=1)
    for n in range(3):
        emit(TEST_EVENT, {"n": n})
    broker_task_ids()
    started = time.monotonic()
    assert Pump().drain(budget=10) == 1
    assert time.monotonic() - started < 0.8  # it did not wait the second for the next token
    pace = WebhookPace.objects.get(webhook=webhook)
    token = pace.refilled_at + timedelta(seconds=1)
    assert pace.wake_at == token - pacing.WAKE_LEAD  # the ticker is owed a pump then
    assert pacing.next_wake() == pace.wake_at
    ticker = Ticker()
    assert 0.5 < ticker.pause() <= 1.0  # it sleeps until the wake-up, not a tick more
    assert pacing.wake_due(pace.wake_at - timedelta(milliseconds=1)) == 0
    assert broker_task_ids() == []
    assert pacing.wake_due(pace.wake_at) == 1 and broker_task_ids() == [[]]  # one pump
    assert WebhookPace.objects.get(webhook=webhook).wake_at is None  # taken once
    assert pacing.wake_due(pace.wake_at + timedelta(seconds=1)) == 0
    _a_second_passes(webhook)
    assert Pump().drain(budget=10) == 1  # the woken pump sends the next one
    attempts = sorted(Delivery.objects.values_list("attempts", flat=True))
    assert attempts == [0, 1, 1]  # waiting spent no attempt


def test_a_pump_sends_other_work_and_ends_while_a_paced_webhook_waits(receiver):
    paced = make_webhook(receiver.url, rate_limit=1, rate_burst=1)
    other = make_webhook(receiver.url)
    for n in range(3):
        emit(TEST_EVENT, {"n": n}, webhooks=[paced.pk])
    for n in range(20):
        emit(TEST_EVENT, {"n": n}, webhooks=[other.pk])
    got = Pump().drain(budget=10)
    ended = timezone.now()
    assert other.deliveries.filter(status="succeeded").count() == 20
    sent = Attempt.objects.filter(delivery__webhook=paced).values_list("started_at", flat=True)
    assert got == 20 + len(sent)
    last = max(Attempt.objects.values_list("started_at", flat=True))
    # Gone within moments of its last request, not at the end of its budget.
    assert (ended - last).total_seconds() < 0.5
    assert WebhookPace.objects.get(webhook=paced).wake_at is not None


def test_a_pump_owing_a_wake_up_pokes_the_ticker(receiver):
    make_webhook(receiver.url, rate_limit=0.5, rate_burst=1)
    emit(TEST_EVENT, {"n": 0})
    emit(TEST_EVENT, {"n": 1})
    ticker = Ticker()
    ticker.listener = wakeup.Listener(pacing.TICKER)
    try:
        ticker.sleep(0)  # nothing waiting yet
        assert Pump().drain(budget=5) == 1  # owes a wake-up in ~2 s, and pokes
        started = time.monotonic()
        ticker.sleep(5)  # woken by the poke to look again
        assert time.monotonic() - started < 1.0
        owed = (pacing.next_wake() - timezone.now()).total_seconds()
        assert 1.5 < owed < 2.0  # the next token (0.5/s), a little early
    finally:
        ticker.listener.close()


# --- a receiver that asks to slow down ----------------------------------------------------
def test_a_429_with_retry_after_pauses_the_webhook_for_all_its_deliveries(receiver):
    receiver.respond = lambda request: Reply(429, {"Retry-After": "30"}, b"slow down")
    webhook = make_webhook(receiver.url, rate_limit=4, rate_burst=1)
    emit(TEST_EVENT, {"n": 0})
    Pump().drain(budget=2)
    pace = WebhookPace.objects.get(webhook=webhook)
    assert pace.paused_until > timezone.now() + timedelta(seconds=25)
    assert pace.learned_rate == 2.0  # halved
    receiver.respond = lambda request: Reply(200)
    emit(TEST_EVENT, {"n": 1})  # another delivery of the same webhook: it waits too
    assert Pump().drain(budget=0.5) == 0
    assert len(receiver.requests) == 1
    fresh = Delivery.objects.get(event__payload={"n": 1})
    assert fresh.status == "pending" and fresh.attempts == 0  # waiting spends no attempt
    assert "paused until" in admin_page(webhook)
    gone = timedelta(seconds=31)  # the pause is over: as if 31 s had passed
    WebhookPace.objects.filter(webhook=webhook).update(
        paused_until=F("paused_until") - gone, refilled_at=F("refilled_at") - gone
    )
    Delivery.objects.filter(pk__in=webhook.deliveries.values("pk")).update(
        next_attempt_at=timezone.now()
    )
    # 2/s learned, burst 1: one goes, the next token is 0.5 s away and the pump (with
    # nothing else to send) leaves it to a pump the ticker wakes.
    assert Pump().drain(budget=3) == 1
    _a_second_passes(webhook)
    assert Pump().drain(budget=3) == 1
    assert WebhookPace.objects.get(webhook=webhook).learned_rate == pytest.approx(2.8)  # +10 % x2


def test_a_429_pauses_a_webhook_without_limits_too(receiver):
    receiver.respond = lambda request: Reply(503, {"Retry-After": "20"})
    webhook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 0})
    Pump().drain(budget=2)
    pace = WebhookPace.objects.get(webhook=webhook)
    assert pace.paused_until > timezone.now() + timedelta(seconds=15) and pace.learned_rate is None
    assert webhook.pk in pacing.paced()
    receiver.respond = lambda request: Reply(200)
    emit(TEST_EVENT, {"n": 1})
    assert Pump().drain(budget=0.5) == 0 and len(receiver.requests) == 1


def test_a_bare_503_writes_no_pace_for_a_webhook_without_a_rate(receiver, settings):
    """Nothing to pause and no rate to halve: no row is written, so the records of a
    receiver failing now and then do not queue behind one row lock; a webhook with a
    rate still has it halved."""
    settings.WEBHOOK_RETRY_SCHEDULE = (0, 3600)
    receiver.respond = lambda request: Reply(503, body=b"try again")
    plain = make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 0})
    Pump().drain(budget=2)
    assert plain.deliveries.get().attempts == 1
    assert not WebhookPace.objects.filter(webhook=plain).exists()
    assert plain.pk not in pacing.paced()
    paced = make_webhook(receiver.url, rate_limit=4, rate_burst=1)
    plain.delete()
    emit(TEST_EVENT, {"n": 1})
    Pump().drain(budget=2)
    assert WebhookPace.objects.get(webhook=paced).learned_rate == 2.0  # halved
    assert WebhookPace.objects.get(webhook=paced).paused_until is None


def test_a_pause_from_another_process_holds_at_once_despite_the_cached_list(receiver):
    webhook = make_webhook(receiver.url)  # no limits: claimed with everything else
    emit(TEST_EVENT, {"n": 0})
    assert pacing.paced() == {}  # this process's list, trusted for a second
    until = timezone.now() + timedelta(seconds=30)
    # Another worker's receiver answered 429 + Retry-After: it wrote the pause.
    WebhookPace.objects.create(webhook=webhook, paused_until=until)
    assert Pump().drain(budget=1) == 0
    assert receiver.requests == []
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 0  # no attempt spent
    assert delivery.next_attempt_at == until and delivery.claim_token is None
    assert webhook.pk in pacing.paced()  # read again: the next claims leave it out


# --- across two qclusters ----------------------------------------------------------------
def _cluster(tmp_path, name: str) -> tuple[subprocess.Popen, object]:
    log = (tmp_path / f"{name}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=worker_env(),
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, log


@pytest.fixture
def two_qclusters(tmp_path):
    started = [_cluster(tmp_path, "one"), _cluster(tmp_path, "two")]
    yield
    for proc, log in started:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    for name in ("one", "two"):
        print((tmp_path / f"{name}.log").read_text()[-3000:])
    connection.close()


def test_the_rate_holds_across_two_qclusters(receiver, two_qclusters):
    webhook = make_webhook(receiver.url, rate_limit=5, rate_burst=1)
    count = 15
    for n in range(count):
        emit(TEST_EVENT, {"n": n})
    assert receiver.wait_for(count, timeout=30), f"{len(receiver.requests)} arrived"
    times = _arrivals(receiver)
    span = times[-1] - times[0]
    # 5/s with a burst of 1: the first at once, then one every 0.2 s.
    assert (count - 1) / span <= 5 * 1.05, span
    assert (count - 1) / span >= 5 * 0.8, span
    for i, start in enumerate(times):  # no second holds more than a token and 5 more
        assert sum(1 for t in times[i:] if t - start < 1.0) <= 6
    assert wait_until(lambda: webhook.deliveries.filter(status="succeeded").count() == count)
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


# --- the pages, the API, the command: one set of rules --------------------------------------
BAD = [
    ({"rate_limit": -1}, "rate_limit", "between 0.01 and 1000"),
    ({"rate_limit": 0}, "rate_limit", "between 0.01 and 1000"),
    ({"rate_limit": 5, "rate_burst": 0}, "rate_burst", "whole number from 1 to 1000"),
    ({"rate_limit": None, "rate_burst": 3}, "rate_burst", "A burst needs a rate limit"),
    ({"max_in_flight": 0}, "max_in_flight", "whole number from 1 to 1000"),
    ({"max_in_flight": 5000}, "max_in_flight", "whole number from 1 to 1000"),
]


@pytest.mark.parametrize(("changes", "field", "message"), BAD)
def test_bad_pacing_is_refused_through_the_api_and_changes_nothing(changes, field, message):
    from tests.test_api_webhooks import Api

    staff = person("root", is_staff=True, is_superuser=True)
    webhook = make_webhook("https://example.com/in", rate_limit=2)
    before = list(Webhook.objects.values()), list(WebhookPace.objects.values())
    response = Api(staff)("PATCH", f"/webhooks/{webhook.pk}", changes)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and message in response.json()["error"]
    assert (list(Webhook.objects.values()), list(WebhookPace.objects.values())) == before


@pytest.mark.parametrize(("changes", "field", "message"), BAD)
def test_bad_pacing_is_refused_on_the_namespace_page_and_changes_nothing(
    receiver, changes, field, message
):
    page = NamespacePage()
    page.submit(receiver.url, "generate")
    before = list(Webhook.objects.values()), list(WebhookPace.objects.values())
    data = {"url": receiver.url, "name": "ci", "all_events": "on", "active": "on",
            "verify_tls": "on", **{k: "" if v is None else str(v) for k, v in changes.items()}}  # fmt: skip
    answer = page.client.post(f"/namespaces/acme/webhooks/{page.pk}/", data).content.decode()
    assert message in answer.replace("&#x27;", "'")
    assert (list(Webhook.objects.values()), list(WebhookPace.objects.values())) == before


def test_the_api_sets_and_shows_the_pace(receiver):
    from tests.test_api_webhooks import Api

    api = Api(person("root", is_staff=True, is_superuser=True))
    webhook = make_webhook(receiver.url)
    answer = api("PATCH", f"/webhooks/{webhook.pk}", {"rate_limit": 2.5, "max_in_flight": 4})
    assert answer.status_code == 200, answer.content
    got = answer.json()
    assert (got["rate_limit"], got["rate_burst"], got["max_in_flight"]) == (2.5, None, 4)
    assert got["pace"] == {"rate": 2.5, "burst": 2, "max_in_flight": 4, "learned_rate": None,
                           "paused_until": None}  # fmt: skip
    assert api("GET", f"/webhooks/{make_webhook(receiver.url).pk}").json()["pace"] is None


def test_the_pages_show_the_pace_in_force(receiver):
    page = NamespacePage()
    page.submit(receiver.url, "generate")
    assert 'id="pace-state"' not in page.look()
    data = {"url": receiver.url, "name": "ci", "all_events": "on", "active": "on",
            "verify_tls": "on", "rate_limit": "3", "rate_burst": "2", "max_in_flight": "5"}  # fmt: skip
    page.client.post(f"/namespaces/acme/webhooks/{page.pk}/", data)
    shown = page.look()
    assert "Pace: at most 3 requests/s, burst 2; at most 5 in flight" in shown
    chat = make_webhook(receiver.url, format=BodyFormat.DISCORD)
    assert "at most 2 requests/s, burst 1 (its platform&#x27;s limit)" in admin_page(chat)


def test_the_command_sets_the_pace_through_the_same_rules(capsys):
    webhook = make_webhook("https://example.com/in")
    call_command("webhooks", "pace", str(webhook.pk), "--rate", "1.5", "--burst", "3")
    assert "at most 1.5 requests/s, burst 3" in capsys.readouterr().out
    with pytest.raises(CommandError, match="rate_limit: Give a rate"):
        call_command("webhooks", "pace", str(webhook.pk), "--rate", "-2")
    webhook.refresh_from_db()
    assert (webhook.rate_limit, webhook.rate_burst) == (1.5, 3)
    call_command("webhooks", "pace", str(webhook.pk), "--rate", "none")
    webhook.refresh_from_db()
    assert (webhook.rate_limit, webhook.rate_burst) == (None, None)  # its burst went with it
    assert json.loads(json.dumps(pacing.paced())) == {}


# --- a user's notification webhook ----------------------------------------------------------
def test_a_user_paces_their_notification_webhook_on_the_settings_page(receiver):
    from accounts import notification

    ann = person("ann")
    client = logged_in(ann)
    form = {"url": receiver.url, "rate_limit": "0.5", "rate_burst": "2", "max_in_flight": "1"}
    client.post(reverse("accounts:save_webhook"), form)
    hook = notification.webhook_of(ann)
    assert (hook.rate_limit, hook.rate_burst, hook.max_in_flight) == (0.5, 2, 1)
    pace = WebhookPace.objects.get(webhook=hook)  # in force for the workers at once
    assert (pace.rate, pace.burst, pace.max_in_flight) == (0.5, 2, 1)
    page = client.get(reverse("accounts:settings")).content.decode()
    assert "Pace: at most 0.5 requests/s, burst 2; at most 1 in flight" in page
    assert 'name="rate_limit" value="0.5"' in page  # the form shows what is set
    client.post(reverse("accounts:save_webhook"), {"url": receiver.url})  # all blank: cleared
    hook.refresh_from_db()
    assert (hook.rate_limit, hook.rate_burst, hook.max_in_flight) == (None, None, None)
    assert hook.pk not in pacing.paced()


@pytest.mark.parametrize(("changes", "field", "message"), BAD)
def test_bad_pacing_of_a_notification_webhook_is_refused_and_changes_nothing(
    receiver, changes, field, message
):
    from accounts import notification
    from tests.test_api_webhooks import Api

    ann = person("ann")
    client = logged_in(ann)
    client.post(reverse("accounts:save_webhook"), {"url": receiver.url, "rate_limit": "2"})
    hook = notification.webhook_of(ann)
    before = list(Webhook.objects.values()), list(WebhookPace.objects.values())
    form = {"url": receiver.url, "rate_limit": "2",
            **{k: "" if v is None else str(v) for k, v in changes.items()}}  # fmt: skip
    answer = client.post(reverse("accounts:save_webhook"), form)
    assert answer.status_code == 400
    assert message in answer.content.decode().replace("&#x27;", "'")
    response = Api(ann)("PUT", "/notification", {"url": receiver.url, **changes})
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and message in response.json()["error"]
    assert (list(Webhook.objects.values()), list(WebhookPace.objects.values())) == before
    assert notification.webhook_of(ann).pk == hook.pk


def test_the_api_paces_a_notification_webhook_and_leaves_out_fields_alone(receiver):
    from tests.test_api_webhooks import Api

    ann = person("ann")
    api = Api(ann)
    answer = api("PUT", "/notification", {"url": receiver.url, "rate_limit": 1, "max_in_flight": 2})
    assert answer.status_code == 200, answer.content
    got = answer.json()
    assert (got["rate_limit"], got["rate_burst"], got["max_in_flight"]) == (1.0, None, 2)
    assert got["pace"]["rate"] == 1.0 and got["pace"]["burst"] == 1
    # A PUT that leaves the pace out keeps it; one that sets it to null clears it.
    assert api("PUT", "/notification", {"url": receiver.url}).json()["rate_limit"] == 1.0
    cleared = api("PUT", "/notification", {"url": receiver.url, "rate_limit": None}).json()
    assert (cleared["rate_limit"], cleared["max_in_flight"]) == (None, 2)
    assert cleared["pace"]["rate"] is None and cleared["pace"]["max_in_flight"] == 2


def test_the_admin_folds_pacing_away_unless_the_webhook_has_limits_of_its_own(admin_client):
    """The add page stays one screen tall; a paced webhook's page shows its limits."""
    import re

    def pacing_folded(html: str) -> bool:
        section = re.search(r'<fieldset class="module aligned ([^"]*)"[^>]*>\s*(<details>)?'
                            r'(?:<summary>)?\s*<h2[^>]*>Pacing</h2>', html)  # fmt: skip
        assert section, "no Pacing section"
        return bool(section.group(2))

    assert pacing_folded(admin_client.get(reverse("admin:hooks_webhook_add")).content.decode())
    hook = Webhook.objects.create(name="plain", url="https://example.com/a", event_types=["*"])
    change = reverse("admin:hooks_webhook_change", args=[hook.pk])
    assert pacing_folded(admin_client.get(change).content.decode())
    Webhook.objects.filter(pk=hook.pk).update(rate_limit=2.0)
    assert not pacing_folded(admin_client.get(change).content.decode())

"""Order per subject: an ordered webhook receives a subject's events one at a time, in
sequence order, through failures, while other subjects go on (hooks.worker.order)."""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import notification
from accounts.models import ApiToken
from hooks import USER, emit, redeliver, stop_retrying
from hooks.models import Delivery, Event, SubjectSequence
from hooks.tools.receiver import Receiver, Reply
from hooks.worker import order, sweeper
from hooks.worker.pump import Pump
from tests.conftest import TEST_EVENT, make_webhook, verify

pytestmark = pytest.mark.django_db(transaction=True)
STATES = ("queued", "started", "progress", "finished")
SUBJECT, SEQUENCE = "X-Webhookhub-Subject", "X-Webhookhub-Sequence"


@pytest.fixture
def quick_retries(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0,) * 12  # a failed attempt is due again at once


def emit_jobs(jobs: int, first: str = "job") -> None:
    """Each job's states, interleaved across jobs, each in its own transaction."""
    for state in STATES:
        for n in range(jobs):
            emit(TEST_EVENT, {"job": n, "state": state}, subject=f"{first}:{n}")


def receipts(requests, ok=lambda request: True) -> dict[str, list[int]]:
    """Per subject, the sequence numbers received (of the requests `ok` says were
    answered with success), in arrival order."""
    found: dict[str, list[int]] = defaultdict(list)
    for request in requests:
        if ok(request):
            found[request.headers[SUBJECT]].append(int(request.headers[SEQUENCE]))
    return found


def deliver_all(rounds: int = 20) -> None:
    """Pumps until nothing waits, as the cluster's ticker would start them: a pump stops
    claiming after an empty claim, and a retry due at once may land after it."""
    for _ in range(rounds):
        Pump().drain(None, budget=10)
        if not Delivery.objects.filter(status__in=["pending", "held"]).exists():
            return


class Flaky:
    """Fails about one request in four (a seeded random), and remembers which."""

    def __init__(self, seed: int = 7) -> None:
        self.rng, self.lock = random.Random(seed), threading.Lock()
        self.failed: set[int] = set()  # id() of the failed requests

    def __call__(self, request) -> Reply:
        with self.lock:
            fails = self.rng.random() < 0.25
            if fails:
                self.failed.add(id(request))
        return Reply(503 if fails else 200)

    def succeeded(self, request) -> bool:
        return id(request) not in self.failed


def test_an_ordered_webhook_gets_each_subject_in_order_through_failures(quick_retries):
    flaky = Flaky()
    with Receiver(respond=flaky) as ordered, Receiver(respond=Flaky(11)) as unordered:
        hook = make_webhook(ordered.url, ordered=True, name="ordered")
        make_webhook(unordered.url, name="unordered")
        emit_jobs(6)
        deliver_all()
        assert Delivery.objects.exclude(status="succeeded").count() == 0
        assert len(flaky.failed) >= 3  # the receiver did fail, more than once
        # Every attempt, failed or not, came after its predecessor had succeeded.
        expected = {f"job:{n}": [1, 2, 3, 4] for n in range(6)}
        assert receipts(ordered.requests, flaky.succeeded) == expected
        for subject, seen in receipts(ordered.requests).items():
            assert seen == sorted(seen), subject  # retries repeat a number, never jump back
        for request in ordered.requests:
            verify(hook, request)  # the signatures still verify with the headers added
        # The unordered webhook gets the same headers, and nothing of it was held.
        assert {r.headers[SUBJECT] for r in unordered.requests} == set(expected)
        assert not Delivery.objects.filter(webhook__name="unordered", subject__isnull=False)


def test_one_failing_subject_does_not_hold_up_the_others(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0, 3600, 3600)  # the stuck job's retry waits
    stuck = threading.Event()
    stuck.set()

    def respond(request) -> Reply:
        body = json.loads(request.body)
        return Reply(500 if body["job"] == 0 and stuck.is_set() else 200)

    with Receiver(respond=respond) as receiver:
        make_webhook(receiver.url, ordered=True)
        emit_jobs(4)
        deliver_all(rounds=4)  # the stuck job's retry is an hour away: it never empties
        got = receipts(receiver.requests)
        assert got["job:0"] == [1]  # its first event failed; the rest of its events wait
        assert all(got[f"job:{n}"] == [1, 2, 3, 4] for n in (1, 2, 3))
        waiting = Delivery.objects.filter(event__subject="job:0")
        assert sorted(waiting.values_list("status", flat=True)) == ["held"] * 3 + ["pending"]
        stuck.clear()  # the receiver is back, and the retry falls due
        waiting.filter(status="pending").update(next_attempt_at=timezone.now())
        deliver_all()
        assert receipts(receiver.requests)["job:0"] == [1, 1, 2, 3, 4]


def test_a_delivery_that_gives_up_lets_the_next_go(receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0, 0)
    receiver.respond = lambda r: Reply(500 if r.headers[SEQUENCE] == "1" else 200)
    make_webhook(receiver.url, ordered=True)
    emit_jobs(1)
    deliver_all()
    assert receipts(receiver.requests) == {"job:0": [1, 1, 2, 3, 4]}
    statuses = Delivery.objects.order_by("sequence").values_list("status", flat=True)
    assert list(statuses) == ["failed", "succeeded", "succeeded", "succeeded"]


def test_while_one_is_pending_a_new_event_of_its_subject_is_held(receiver):
    make_webhook(receiver.url, ordered=True)
    emit(TEST_EVENT, {"n": 1}, subject="job:a")
    emit(TEST_EVENT, {"n": 2}, subject="job:a")
    emit(TEST_EVENT, {"n": 3}, subject="job:b")
    emit(TEST_EVENT, {"n": 4})  # no subject: never held
    statuses = {d.event.payload["n"]: d.status for d in Delivery.objects.select_related("event")}
    assert statuses == {1: "pending", 2: "held", 3: "pending", 4: "pending"}


def test_stopping_the_pending_one_releases_the_next(receiver):
    make_webhook(receiver.url, ordered=True)
    for n in range(3):
        emit(TEST_EVENT, {"n": n}, subject="job:a")
    first = Delivery.objects.get(sequence=1)
    assert stop_retrying(Delivery.objects.filter(pk=first.pk)) == 1
    statuses = Delivery.objects.order_by("sequence").values_list("status", flat=True)
    assert list(statuses) == ["failed", "pending", "held"]


def test_a_redelivery_by_hand_does_not_stall_the_chain(receiver):
    make_webhook(receiver.url, ordered=True)
    emit_jobs(1)
    deliver_all()
    assert receipts(receiver.requests) == {"job:0": [1, 2, 3, 4]}
    with transaction.atomic():
        redeliver(Delivery.objects.filter(sequence=2))
    emit(TEST_EVENT, {"n": 5}, subject="job:0")  # waits for the redelivery
    assert Delivery.objects.get(sequence=5).status == "held"
    deliver_all()
    assert receipts(receiver.requests)["job:0"] == [1, 2, 3, 4, 2, 5]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_the_sweeper_releases_a_held_one_whose_predecessor_finished(receiver):
    make_webhook(receiver.url, ordered=True)
    emit(TEST_EVENT, {"n": 1}, subject="job:a")
    emit(TEST_EVENT, {"n": 2}, subject="job:a")
    # As if the release were lost (a worker that died between its attempt and record).
    Delivery.objects.filter(sequence=1).update(status="succeeded", next_attempt_at=None)
    sweeper.sweep_once()
    assert Delivery.objects.get(sequence=2).status == "pending"
    deliver_all()
    assert receipts(receiver.requests) == {"job:a": [2]}


def test_what_a_pumps_record_releases_is_left_to_it_not_to_the_ticker(receiver, settings):
    """The pump claims again after its record; the ticker, which would hand each
    released row waiting behind a backlog to the broker again every second, leaves it
    to the pump for a claim lease. A release without a pump to claim it (a stop, the
    sweeper) is the ticker's at once."""
    webhook = make_webhook(receiver.url, ordered=True)
    for n in range(3):
        emit(TEST_EVENT, {"n": n}, subject="job:a")
    Delivery.objects.update(enqueued_until=None)  # the emit's hand-over is spent
    pump = Pump()
    assert pump.refill(None) == 1  # the first of the chain; the others are held
    assert pump.collect(timeout=10) == 1
    pump.write()  # its record
    second = Delivery.objects.get(sequence=2)
    lease = timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE)
    assert second.status == "pending"
    assert timezone.now() < second.enqueued_until <= timezone.now() + lease
    assert sweeper.enqueue_due() == 0  # the ticker's look
    assert pump.took_released()
    Delivery.objects.filter(pk=second.pk).update(status="succeeded", next_attempt_at=None)
    with transaction.atomic():  # as a stop, or order turned off, releases
        assert order.release([(webhook.pk, "job:a")]) == 1
    third = Delivery.objects.get(sequence=3)
    assert third.status == "pending" and third.enqueued_until is None
    assert sweeper.enqueue_due() == 1


def test_a_disabled_webhook_skips_its_held_deliveries_too(receiver):
    hook = make_webhook(receiver.url, ordered=True)
    for n in range(3):
        emit(TEST_EVENT, {"n": n}, subject="job:a")
    hook.disabled_at = timezone.now()
    hook.save()
    sweeper.sweep_once()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"skipped"}


def test_a_payload_filter_keeps_order_among_what_it_lets_through(receiver):
    make_webhook(receiver.url, ordered=True, payload_filter={"path": "state", "in": ["a", "c"]})
    for state in "abc":
        emit(TEST_EVENT, {"state": state}, subject="job:a")
    kept = Delivery.objects.order_by("sequence").values_list("sequence", "status")
    assert list(kept) == [(1, "pending"), (3, "held")]
    deliver_all()
    assert receipts(receiver.requests) == {"job:a": [1, 3]}


def test_a_subjects_numbers_have_no_gaps_and_a_rollback_takes_none(receiver):
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1}, subject="user:7")
    with pytest.raises(RuntimeError), transaction.atomic():
        emit(TEST_EVENT, {"n": 2}, subject="user:7")
        raise RuntimeError
    emit(TEST_EVENT, {"n": 3}, subject="user:7")
    emit(TEST_EVENT, {"n": 4}, subject="user:8")
    numbers = Event.objects.order_by("created_at").values_list("subject", "sequence")
    assert list(numbers) == [("user:7", 1), ("user:7", 2), ("user:8", 1)]


@pytest.mark.parametrize(
    "subject, error",
    [
        ("job 1", "visible ASCII"),
        ("job:\r\nX-Evil: 1", "visible ASCII"),
        ("job:é", "visible ASCII"),
        ("j" * 201, "at most 200"),
        (42, "is a string"),
    ],
)
def test_a_malformed_subject_is_refused_and_nothing_is_written(receiver, subject, error):
    make_webhook(receiver.url)
    with pytest.raises((TypeError, ValueError), match=error):
        emit(TEST_EVENT, {"n": 1}, subject=subject)
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert not SubjectSequence.objects.exists()


def test_subject_of_always_makes_an_acceptable_subject():
    from hooks import subject_of
    from hooks.outbox.subjects import check

    assert subject_of("job", "j-42") == "job:j-42"
    for key in ("a b", "é" * 80, "x\r\ny", "k" * 400):
        assert check(subject_of("job", key)) == subject_of("job", key)
    assert subject_of("job", "a b") != subject_of("job", "a%20b ")


def test_turning_order_off_lets_the_held_ones_go(receiver):
    from hooks import configure_webhook

    hook = make_webhook(receiver.url, ordered=True)
    for n in range(3):
        emit(TEST_EVENT, {"n": n}, subject="job:a")
    assert Delivery.objects.filter(status="held").count() == 2
    saved = configure_webhook(hook, {"ordered": False})
    assert saved.changed == ("ordered",)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}


def test_the_api_shows_and_sets_order(client, ann):
    from accounts.models import ApiToken

    ann.is_staff = ann.is_superuser = True  # server webhooks are staff's
    ann.save()
    _, raw = ApiToken.issue(ann, "tests")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    hook = make_webhook("http://127.0.0.1:9/hook")
    path = f"/api/v1/webhooks/{hook.pk}"

    def patch(body):
        return client.patch(path, data=json.dumps(body), content_type="application/json", **auth)

    assert client.get(path, **auth).json()["ordered"] is False
    assert patch({"ordered": "sometimes"}).status_code in (400, 422)
    hook.refresh_from_db()
    assert hook.ordered is False
    assert patch({"ordered": True}).status_code == 200
    assert client.get(path, **auth).json()["ordered"] is True


# --- the other entry points: the account settings page, PUT /notification, the CLI ----
def user_events(user, count: int) -> list[str]:
    """`count` events addressed to `user` about their account; their deliveries' statuses."""
    for n in range(count):
        emit(TEST_EVENT, {"n": n}, user=user, audience=(USER,), subject=f"user:{user.pk}")
    return by_sequence()


def by_sequence() -> list[str]:
    return list(Delivery.objects.order_by("sequence").values_list("status", flat=True))


def test_the_account_settings_page_sets_and_shows_order_and_a_resubmit_keeps_it(
    client, ann, receiver
):
    client.force_login(ann)
    save, settings_url = reverse("accounts:save_webhook"), reverse("accounts:settings")
    page = client.get(settings_url).content.decode()
    assert 'name="ordered"' in page and 'id="id_ordered" checked' not in page
    form = {"url": receiver.url, "shape": "auto", "ordered": "on"}
    assert client.post(save, {**form, "secret_action": "generate"}).status_code == 302
    assert notification.webhook_of(ann).ordered
    page = client.get(settings_url).content.decode()
    assert 'id="id_ordered" checked' in page and "Order: per subject" in page
    assert user_events(ann, 2) == ["pending", "held"]
    assert client.post(save, form).status_code == 302  # the page's form sent again as it is
    assert notification.webhook_of(ann).ordered
    assert by_sequence() == ["pending", "held"]
    assert client.post(save, {"url": receiver.url, "shape": "auto"}).status_code == 302  # unticked
    assert not notification.webhook_of(ann).ordered
    assert by_sequence() == ["pending", "pending"]
    assert "Order: none" in client.get(settings_url).content.decode()


def test_put_notification_sets_order_keeps_it_when_left_out_and_refuses_a_non_boolean(
    client, ann, receiver
):
    _, raw = ApiToken.issue(ann, "tests")

    def put(body: dict):
        return client.put("/api/v1/notification", data=json.dumps(body),
                          content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")  # fmt: skip

    answer = put({"url": receiver.url, "ordered": True})
    assert answer.status_code == 200, answer.content
    assert answer.json()["ordered"] is True
    refused = put({"url": "https://elsewhere.example.com/hook", "ordered": "sometimes"})
    assert refused.status_code == 400 and "ordered" in refused.content.decode()
    hook = notification.webhook_of(ann)
    assert (hook.url, hook.ordered) == (receiver.url, True)  # nothing of it was stored
    assert put({"url": receiver.url}).json()["ordered"] is True  # left out: unchanged
    assert put({"url": receiver.url, "ordered": False}).json()["ordered"] is False
    assert notification.webhook_of(ann).ordered is False


def test_the_cli_lists_which_webhooks_keep_order_and_counts_what_is_held(receiver):
    make_webhook(receiver.url, name="parallel")
    make_webhook(receiver.url, name="in-order", ordered=True)
    for n in range(3):
        emit(TEST_EVENT, {"n": n}, subject="job:a")

    def line(output: str, name: str) -> str:
        return next(row for row in output.splitlines() if f" {name} " in row)

    def run(*args: str) -> str:
        out = io.StringIO()
        call_command("webhooks", *args, stdout=out)
        return out.getvalue()

    listing = run("list")
    assert " ordered " in line(listing, "in-order") and " ordered " not in line(listing, "parallel")
    status = run("status")
    assert "backlog 1 (+2 held for order)  " in line(status, "in-order")
    assert "backlog 3  last failure" in line(status, "parallel")


@pytest.mark.skipif(
    not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="PostgreSQL: with SQLite's one writer an open emit holds every record anyway",
)
def test_a_record_does_not_wait_for_an_emit_of_its_subject_still_open(receiver):
    """An emitting transaction holds its subject's counter row until it commits. A
    worker's record of that subject's delivery skips the row rather than wait (its
    batch's other deliveries would wait too) and releases the chain after its commit."""
    make_webhook(receiver.url, ordered=True)
    emit(TEST_EVENT, {"n": 1}, subject="job:a")
    seen: dict[str, str] = {}
    emitted = threading.Event()

    def emitter() -> None:
        with transaction.atomic():
            emit(TEST_EVENT, {"n": 2}, subject="job:a")  # held: the first is not finished
            emitted.set()
            first = Delivery.objects.filter(sequence=1)
            recorded = lambda: first.get().status == "succeeded"  # noqa: E731
            deadline = time.monotonic() + 5
            while not recorded() and time.monotonic() < deadline:
                time.sleep(0.02)  # the record, from the pump's connection
            seen["first"] = first.get().status  # while this transaction is still open
        connection.close()

    opened = threading.Thread(target=emitter)
    opened.start()
    assert emitted.wait(10)
    Pump().drain(None, budget=10)
    opened.join()
    assert seen["first"] == "succeeded"  # recorded while the emit was open
    deliver_all()  # the late release let the second go
    assert receipts(receiver.requests) == {"job:a": [1, 2]}

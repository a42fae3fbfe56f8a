"""A webhook's success counts per settled hour (hooks.tools.rollup): read once counted,
and never wrong after a redelivery, a prune, an admin deletion or a race with one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from hooks import emit
from hooks.models import Attempt, Delivery, DeliveryHour, Event, HubHour
from hooks.tools import redelivery, retention, rollup, stats
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db

NOW = timezone.now()
WEEK = NOW - timedelta(days=7)


def history(webhook, *rows: tuple[float, str]) -> list[Delivery]:
    """One delivery per (hours ago, status), its event made as long ago."""
    made = []
    for hours, status in rows:
        event = emit(TEST_EVENT, {"hours": hours})
        when = NOW - timedelta(hours=hours)
        Event.objects.filter(pk=event.pk).update(created_at=when)
        delivery = Delivery.objects.get(event=event, webhook=webhook)
        finished = status != "pending"
        Delivery.objects.filter(pk=delivery.pk).update(
            status=status, created_at=when, next_attempt_at=None if finished else when,
            completed_at=when if finished else None,
        )  # fmt: skip
        made.append(delivery)
    return made


def plain(webhook) -> tuple[int, int]:
    """What the deliveries themselves say: the counts the rollup must match."""
    return rollup.finished(webhook, WEEK)


@pytest.fixture
def webhook(receiver):
    return make_webhook(receiver.url)


def test_settled_hours_are_counted_once_and_then_read(webhook):
    history(webhook, (30, "succeeded"), (30.2, "failed"), (50, "succeeded"), (200, "failed"))
    assert rollup.counts(webhook, WEEK, NOW) == plain(webhook) == (2, 1)
    settled = rollup.floor_hour(NOW - rollup.SETTLE) - rollup.ceil_hour(WEEK)  # 166 or 167 h
    assert DeliveryHour.objects.filter(webhook=webhook).count() == settled / rollup.HOUR
    # Read back, not counted again: rows gone behind the rollup's back stay counted.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Delivery._meta.db_table} WHERE status = 'succeeded'")
    assert rollup.counts(webhook, WEEK, NOW) == (2, 1)


def test_the_recent_tail_and_the_window_start_are_counted_live(webhook):
    history(webhook, (0.01, "succeeded"), (0.1, "failed"), (7 * 24 - 0.1, "succeeded"))
    assert rollup.counts(webhook, WEEK, NOW) == plain(webhook) == (2, 1)
    history(webhook, (0.02, "succeeded"))  # the tail is not settled: it is counted again
    assert rollup.counts(webhook, WEEK, NOW) == (3, 1)
    settled = DeliveryHour.objects.filter(webhook=webhook).values_list("hour", flat=True)
    assert max(settled) <= NOW - rollup.SETTLE - rollup.HOUR
    assert min(settled) >= WEEK


def test_an_hour_with_a_pending_delivery_waits_until_it_finishes(webhook):
    (waiting,) = history(webhook, (40, "pending"))
    history(webhook, (60, "succeeded"), (20, "succeeded"))
    assert rollup.counts(webhook, WEEK, NOW) == (2, 0)
    Delivery.objects.filter(pk=waiting.pk).update(status="failed", next_attempt_at=None)
    assert rollup.counts(webhook, WEEK, NOW) == plain(webhook) == (2, 1)


def test_a_redelivery_voids_the_hours_it_changes(webhook):
    (failed,) = history(webhook, (30, "failed"))
    assert rollup.counts(webhook, WEEK, NOW) == (0, 1)
    redelivery.redeliver(Delivery.objects.filter(pk=failed.pk))
    deliver_due()  # the receiver answers 200 this time
    assert Delivery.objects.get(pk=failed.pk).status == "succeeded"
    assert rollup.counts(webhook, WEEK, NOW) == plain(webhook) == (1, 0)


def test_a_count_that_raced_an_invalidation_is_void(webhook):
    (failed,) = history(webhook, (30, "failed"))
    before = rollup._epoch(webhook)
    rollup.invalidate([webhook.pk])  # a redelivery commits while a count is under way …
    Delivery.objects.filter(pk=failed.pk).update(status="succeeded")
    first, limit = rollup.ceil_hour(WEEK), rollup.floor_hour(NOW)
    DeliveryHour.objects.filter(webhook=webhook).delete()
    rollup._hours(webhook, before, first, limit)  # … and stores what it counted before
    DeliveryHour.objects.filter(webhook=webhook).update(succeeded=0, failed=1)
    assert rollup.counts(webhook, WEEK, NOW) == plain(webhook) == (1, 0)


def test_a_prune_forgets_the_hours_it_reached(webhook):
    history(webhook, (100, "succeeded"), (150, "failed"), (10, "succeeded"))
    assert rollup.counts(webhook, WEEK, NOW) == (2, 1)
    cutoff = NOW - timedelta(hours=50)
    assert retention.prune(cutoff)["deliveries"] == 2
    assert not DeliveryHour.objects.filter(hour__lt=rollup.floor_hour(cutoff)).exists()
    assert rollup.counts(webhook, WEEK, NOW) == plain(webhook) == (1, 0)


@pytest.mark.parametrize("what", ["delivery", "event"])
def test_deleting_history_in_the_admin_voids_its_hours(admin_client, webhook, what):
    doomed, _ = history(webhook, (30, "failed"), (31, "succeeded"))
    assert rollup.counts(webhook, WEEK, NOW) == (1, 1)
    pk = doomed.pk if what == "delivery" else doomed.event_id
    page = reverse(f"admin:hooks_{what}_delete", args=[pk])
    assert admin_client.post(page, {"post": "yes"}).status_code == 302
    assert rollup.counts(webhook, WEEK, NOW) == plain(webhook) == (1, 0)


def test_the_status_command_reads_the_rollup(webhook):
    history(webhook, (30, "succeeded"), (31, "failed"), (0.1, "succeeded"))
    status = stats.webhook_status(webhook, WEEK, NOW)
    assert (status.succeeded, status.failed) == (2, 1)
    assert DeliveryHour.objects.filter(webhook=webhook, succeeded=1).count() == 1


# --- the hub's hours: the dashboard ------------------------------------------------------
def dashboard(now=NOW) -> tuple:
    """The 7-day dashboard's numbers: totals and each day's (successes, failures)."""
    summary = stats.summary("7d", now=now)
    days = [(ok, bad) for _, ok, bad in summary.buckets]
    return (summary.deliveries, summary.succeeded, summary.failed, summary.pending), days


def counted_directly(now=NOW) -> tuple:
    """The same numbers from the deliveries themselves, every hour counted again."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rollup, "hub_settled_until", lambda now: rollup.floor_hour(WEEK))
        return dashboard(now)


def made(webhook, *rows: tuple[float, str]) -> list[Delivery]:
    """Deliveries made directly (of another webhook, or none: a job's callback)."""
    return [Delivery.objects.create(
                event=Event.objects.create(type=TEST_EVENT, created_at=NOW - timedelta(hours=hours)),
                webhook=webhook, target_url="http://127.0.0.1:9/", status=status,
                created_at=NOW - timedelta(hours=hours),
            ) for hours, status in rows]  # fmt: skip


def test_the_dashboard_reads_settled_hours_once_and_counts_the_rest(webhook):
    history(webhook, (30, "succeeded"), (30.2, "failed"), (50, "skipped"), (0.1, "succeeded"))
    made(None, (100, "failed"), (7 * 24 - 0.1, "succeeded"), (200, "succeeded"))
    assert dashboard() == counted_directly()
    assert dashboard()[0] == (6, 3, 2, 0)
    settled = rollup.floor_hour(NOW - rollup.SETTLE) - rollup.ceil_hour(WEEK)
    assert HubHour.objects.count() == settled / rollup.HOUR
    # Read back, not counted again: rows gone behind the rollup's back stay counted, the
    # unsettled last hour is counted live.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Delivery._meta.db_table} WHERE status = 'skipped'")
    history(webhook, (0.05, "failed"))
    assert dashboard()[0] == (7, 3, 3, 0)


def test_a_pending_delivery_keeps_the_hub_hours_after_it_unsettled(webhook):
    (waiting,) = history(webhook, (40, "pending"))
    history(webhook, (60, "succeeded"), (20, "failed"))
    assert dashboard() == counted_directly() and dashboard()[0] == (3, 1, 1, 1)
    assert not HubHour.objects.filter(
        hour__gte=rollup.floor_hour(NOW - timedelta(hours=40))
    ).exists()
    Delivery.objects.filter(pk=waiting.pk).update(status="succeeded", next_attempt_at=None)
    assert dashboard() == counted_directly() and dashboard()[0] == (3, 2, 1, 0)


@pytest.mark.parametrize("change", ["redelivery", "prune", "webhook deleted", "admin"])
def test_what_changes_settled_history_voids_the_hub_hours(webhook, receiver, admin_client, change):
    failed, kept = history(webhook, (30, "failed"), (20, "succeeded"))
    other = make_webhook(receiver.url, name="other", event_types=[])
    (gone,) = made(other, (25, "failed"))
    assert dashboard()[0] == (3, 1, 2, 0)
    if change == "redelivery":  # the receiver answers 200 this time
        redelivery.redeliver(Delivery.objects.filter(pk=failed.pk))
        deliver_due()
        expected = (3, 2, 1, 0)
    elif change == "prune":
        retention.prune(NOW - timedelta(hours=24))
        expected = (1, 1, 0, 0)
    elif change == "webhook deleted":
        other.delete()
        expected = (2, 1, 1, 0)
    else:
        page = reverse("admin:hooks_delivery_delete", args=[gone.pk])
        assert admin_client.post(page, {"post": "yes"}).status_code == 302
        expected = (2, 1, 1, 0)
    assert dashboard() == counted_directly() and dashboard()[0] == expected


def test_a_hub_count_that_raced_an_invalidation_is_void(webhook):
    (failed,) = history(webhook, (30, "failed"))
    before = rollup._hub_epoch()
    rollup.invalidate([None])  # a redelivery commits while a count is under way …
    Delivery.objects.filter(pk=failed.pk).update(status="succeeded")
    first, limit = rollup.ceil_hour(WEEK), rollup.floor_hour(NOW - rollup.SETTLE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rollup, "_hub_epoch", lambda: before)
        rollup.hub_hours(first, limit)  # … and stores what it counted under the old epoch
    HubHour.objects.update(succeeded=0, failed=1)
    assert dashboard()[0] == (1, 1, 0, 0)


def test_failed_attempts_by_webhook_count_the_latest_sample(
    webhook, receiver, admin_client, monkeypatch
):
    other = make_webhook(receiver.url, name="other", event_types=[])
    rows = [
        *made(webhook, (1, "failed"), (2, "failed")),
        *made(other, (3, "failed"), (4, "failed")),
    ]
    for delivery in rows:
        Attempt.objects.create(delivery=delivery, number=1, url=receiver.url, succeeded=False,
                               started_at=delivery.created_at, response_status=500)  # fmt: skip
    summary = stats.summary("7d", now=NOW)
    assert summary.failures_by_webhook == [("other", 2), ("receiver", 2)]
    assert not summary.failures_sampled
    monkeypatch.setattr(stats, "FAILURE_SAMPLE", 3)  # the latest three: two of "receiver"
    summary = stats.summary("7d", now=NOW)
    assert summary.failures_by_webhook == [("receiver", 2), ("other", 1)]
    assert summary.failures_sampled
    page = admin_client.get(reverse("hooks_dashboard") + "?period=7d").content.decode()
    assert "Among the latest 3 failed attempts of the period." in page

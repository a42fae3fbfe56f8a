"""The sweeper: the Delivery table, not the broker, is the source of truth."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule

from hooks import emit
from hooks.models import Delivery
from hooks.worker import schedules
from hooks.worker.sweeper import enqueue_due, sweep, sweep_once
from hooks.worker.tasks import pump
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db(transaction=True)


def broker_task_ids() -> list[list[str]]:
    """The delivery ids of the tasks waiting in the broker (then removed from it)."""
    from django.core.signing import BadSignature
    from django_q.signing import SignedPackage

    broker = get_broker()
    batches = []
    while task := broker.dequeue():
        for ack_id, package in task:
            broker.acknowledge(ack_id)
            try:
                batches.append(SignedPackage.loads(package)["args"][0])
            except BadSignature:  # left in a shared Redis by another checkout's key
                continue
    return batches


def test_a_lost_enqueue_is_found_by_the_sweeper(receiver):
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    delivery = Delivery.objects.get()
    broker_task_ids()  # the broker loses the task (e.g. Redis restarted)
    assert enqueue_due() == 0  # within its grace period nobody re-enqueues it
    later = timezone.now() + timedelta(minutes=2)
    assert enqueue_due(later) == 1
    [[delivery_id]] = broker_task_ids()
    assert delivery_id == str(delivery.pk)
    assert pump([delivery_id]) == 1 and len(receiver.requests) == 1
    assert enqueue_due(later + timedelta(minutes=2)) == 0  # delivered: nothing left


def test_a_due_retry_is_enqueued_once_per_grace_period(receiver):
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    broker_task_ids()
    later = timezone.now() + timedelta(minutes=2)
    assert sweep_once(later) == 1
    assert sweep_once(later) == 0
    assert len(broker_task_ids()) == 1


def test_deliver_ignores_ids_that_are_not_due_or_done(receiver):
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    delivery = Delivery.objects.get()
    Delivery.objects.update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert pump([str(delivery.pk)]) == 0
    assert receiver.requests == []


def test_idle_sweep_returns_at_once():
    assert sweep() == 0


def test_migrate_keeps_the_sweep_schedule():
    Schedule.objects.filter(name=schedules.SWEEP).delete()
    call_command("migrate", verbosity=0)
    schedule = Schedule.objects.get(name=schedules.SWEEP)
    assert schedule.func == "hooks.worker.tasks.sweep" and schedule.minutes == 1
    prune = Schedule.objects.get(name=schedules.PRUNE)
    assert (
        prune.func == "hooks.tools.retention.prune_by_setting"
        and prune.schedule_type == Schedule.DAILY
    )

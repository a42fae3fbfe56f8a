"""Payload filters: the syntax (refused with a message that says where), the matching,
and emit() delivering only to the webhooks whose filter matches, with a real receiver."""

from __future__ import annotations

import json

import pytest

from hooks import emit
from hooks.models import Delivery
from hooks.outbox import filters
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook

PAYLOAD = {"job": {"status": "COMPLETED", "endpoint": "echo", "tags": ["a"], "ms": 1200,
                   "outputs": [{"url": "https://x/1.png"}]}, "flag": True}  # fmt: skip


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"path": "job.status", "eq": "COMPLETED"}, True),
        ({"path": "job.status", "eq": "FAILED"}, False),
        ({"path": "job.status", "ne": "FAILED"}, True),
        ({"path": "job.missing", "ne": "x"}, True),
        ({"path": "job.endpoint", "in": ["sd", "echo"]}, True),
        ({"path": "job.endpoint", "nin": ["sd", "echo"]}, False),
        ({"path": "job.tags", "exists": True}, True),
        ({"path": "job.nope", "exists": False}, True),
        ({"path": "job.ms", "gt": 1000}, True),
        ({"path": "job.ms", "lte": 1000}, False),
        ({"path": "job.status", "gt": 1}, False),  # not a number: no match, no error
        ({"path": "flag", "gt": 0}, False),  # a boolean is not a number here
        ({"path": "job.outputs.0.url", "eq": "https://x/1.png"}, True),
        ({"path": "job.outputs.5.url", "exists": True}, False),
        (
            {"all": [{"path": "job.status", "eq": "COMPLETED"}, {"path": "job.ms", "lt": 2000}]},
            True,
        ),
        (
            {"all": [{"path": "job.status", "eq": "COMPLETED"}, {"path": "job.ms", "lt": 100}]},
            False,
        ),
        (
            {
                "any": [
                    {"path": "job.status", "eq": "FAILED"},
                    {"all": [{"path": "flag", "eq": True}]},
                ]
            },
            True,
        ),
    ],
)
def test_conditions_match_as_documented(spec, expected):
    assert filters.matches(filters.validate(spec), PAYLOAD) is expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("job.status == 1", "filter: expected an object"),
        ({"path": "job.status", "equals": 1}, "filter: unknown operator 'equals'"),
        ({"path": "job.status"}, "exactly one operator"),
        ({"path": "job.status", "eq": 1, "ne": 2}, "exactly one operator"),
        ({"path": "", "eq": 1}, "'path' must be a dotted path"),
        ({"path": "a..b", "eq": 1}, "'path' must be a dotted path"),
        ({"path": "a", "in": "x"}, "'in' takes a list"),
        ({"path": "a", "exists": "yes"}, "'exists' takes true or false"),
        ({"path": "a", "gt": "5"}, "'gt' compares numbers"),
        ({"all": []}, "filter.all: give a non-empty list"),
        ({"all": [{"path": "a", "eq": 1}], "path": "b"}, "stands alone"),
        (
            {"any": [{"path": "a", "eq": 1}, {"path": "b", "bad": 1}]},
            "filter.any[1]: unknown operator 'bad'",
        ),
    ],
)
def test_a_bad_filter_is_refused_saying_where(spec, message):
    with pytest.raises(filters.FilterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        filters.validate(spec)


@pytest.mark.django_db(transaction=True)
def test_emit_delivers_only_to_webhooks_whose_filter_matches(receiver):
    plain = make_webhook(receiver.url + "/plain")
    done = make_webhook(
        receiver.url + "/done", payload_filter={"path": "job.status", "eq": "COMPLETED"}
    )
    failed = make_webhook(
        receiver.url + "/failed", payload_filter={"path": "job.status", "eq": "FAILED"}
    )
    off = make_webhook(
        receiver.url + "/off", payload_filter={"path": "job.status", "eq": "COMPLETED"}
    )
    from django.utils import timezone

    off.disabled_at = timezone.now()
    off.save()
    emit(TEST_EVENT, PAYLOAD)
    emit(TEST_EVENT, {"job": {"status": "FAILED"}})
    deliver_due()
    got = sorted(
        (r.path.rsplit("/", 1)[1], json.loads(r.body)["job"]["status"]) for r in receiver.requests
    )
    assert got == [
        ("done", "COMPLETED"),
        ("failed", "FAILED"),
        ("plain", "COMPLETED"),
        ("plain", "FAILED"),
    ]
    assert Delivery.objects.filter(webhook=plain).count() == 2
    assert (
        Delivery.objects.filter(webhook=done).count() == 1
        and Delivery.objects.filter(webhook=failed).count() == 1
    )
    # a disabled webhook keeps only what it would have received, to be replayed later
    assert list(Delivery.objects.filter(webhook=off).values_list("status", flat=True)) == [
        "skipped"
    ]
    assert not Delivery.objects.exclude(status__in=["succeeded", "skipped"]).exists()


@pytest.mark.django_db
def test_the_admin_checks_a_filter_when_saved_and_previews_the_last_events(admin_client, receiver):
    from django.urls import reverse

    from tests.test_admin import form

    add = reverse("admin:hooks_webhook_add")
    refused = admin_client.post(
        add, form(url=receiver.url, payload_filter='{"path": "job.status", "equals": 1}')
    )
    assert (
        refused.status_code == 200
        and "filter: unknown operator &#x27;equals&#x27;" in refused.content.decode()
    )
    refused = admin_client.post(add, form(url=receiver.url, payload_filter="{oops"))
    assert "The filter is not valid JSON" in refused.content.decode()
    from hooks.models import Webhook

    assert not Webhook.objects.exists()  # nothing saved
    saved = admin_client.post(
        add, form(url=receiver.url, payload_filter='{"path": "job.status", "eq": "COMPLETED"}')
    )
    assert saved.status_code == 302
    webhook = Webhook.objects.get()
    assert webhook.payload_filter == {"path": "job.status", "eq": "COMPLETED"}
    emit(TEST_EVENT, PAYLOAD)
    emit(TEST_EVENT, {"job": {"status": "FAILED"}})
    page = admin_client.get(
        reverse("admin:hooks_webhook_change", args=[webhook.pk])
    ).content.decode()
    assert "1 of the last 2 events it subscribes to would have been sent." in page
    cleared = admin_client.post(reverse("admin:hooks_webhook_change", args=[webhook.pk]),
                                form(url=receiver.url, payload_filter=""))  # fmt: skip
    assert cleared.status_code == 302 and Webhook.objects.get().payload_filter is None

"""Events with large values: kept apart from the event's row, stored once however many
events of a transaction carry them, sent whole (and signed over the whole body), shown
shortened in the history (hooks.largevalues)."""

from __future__ import annotations

import base64
import json
import random
from datetime import timedelta
from email.parser import BytesParser
from email.policy import HTTP

import pytest
from django.db import transaction
from django.utils import timezone

import hooks
from hooks import largevalues
from hooks.largevalues import WHOLE, encode_json, joined, joined_json, split
from hooks.models import Attempt, Delivery, Event, EventValue, LargeValue
from hooks.tools import retention
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook, verify

pytestmark = pytest.mark.django_db(transaction=True)
LIMIT = 256 * 1024
PNG = random.Random(7).randbytes(405_000)  # 540,000 characters of base64
IMAGE = "data:image/png;base64," + base64.b64encode(PNG).decode()


def whole_again(payload: dict) -> tuple[dict, list]:
    """Split, then joined again, both ways: parsed (templates) and as the JSON sent."""
    kept, parts = split(payload, LIMIT, largevalues.payload_size(payload))
    values = [(p.path, p.data) for p in parts]
    assert joined(kept, values) == payload
    assert joined_json(kept, values) == encode_json(payload)
    return kept, parts


def test_a_payload_within_the_limit_is_kept_whole():
    payload = {"text": "x" * 200_000}
    assert split(payload, LIMIT, len(encode_json(payload))) == (payload, [])


def test_large_values_go_apart_and_come_back_in_their_places():
    payload = {"id": "j1", "input": {"prompt": "a cat", "n": 1},
               "output": {"images": [IMAGE], "info": "seed 3"}}  # fmt: skip
    kept, parts = whole_again(payload)
    assert [p.path for p in parts] == [("output", "images", 0)]
    assert kept["input"] == payload["input"] and kept["output"]["info"] == "seed 3"
    assert kept["output"]["images"][0].startswith("data:image/png;base64,")
    assert kept["output"]["images"][0].endswith(f"… [{len(IMAGE) + 2} bytes]")
    assert len(encode_json(kept)) < 2 * largevalues.PREVIEW


@pytest.mark.parametrize(
    "payload",
    [
        {f"k{i}": "x" * 100 for i in range(5000)},  # many small fields: apart whole
        {
            "deep": [
                [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["y" * 300_000]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
            ]
        },
        {"many": list(range(100_000))},  # a long array goes apart whole
        {"mid": {f"k{i}": "z" * 15_000 for i in range(30)}},  # no item large, all of it is
    ],
    ids=["many fields", "deep", "long array", "many middling"],
)
def test_any_shape_comes_back_whole_and_the_row_stays_within_the_limit(payload):
    kept, parts = whole_again(payload)
    assert parts and len(encode_json(kept)) <= LIMIT
    if "k0" in payload:
        assert list(kept) == [WHOLE]


def test_the_same_value_in_several_places_and_events_is_stored_once(receiver):
    hook = make_webhook(receiver.url)
    flat = {"image": IMAGE, "input": {"image": IMAGE}, "output": IMAGE}
    status = {"id": "j1", "output": {"images": [IMAGE]}}
    with transaction.atomic():
        hooks.emit(TEST_EVENT, flat)
        hooks.emit(TEST_EVENT, status)
    assert LargeValue.objects.count() == 1 and EventValue.objects.count() == 4
    for event in Event.objects.all():  # the rows stay small
        assert event.stored_apart and len(encode_json(event.payload)) < 4 * 1024
    assert deliver_due() == 2 and receiver.wait_for(2)
    assert sorted((json.loads(r.body) for r in receiver.requests), key=len) == [status, flat]
    for request in receiver.requests:
        verify(hook, request)  # signed over the whole body sent


def test_history_keeps_the_row_with_each_values_preview_not_the_body(receiver):
    make_webhook(receiver.url)
    hooks.emit(TEST_EVENT, {"id": "j1", "output": {"images": [IMAGE]}})
    deliver_due()
    assert len(receiver.requests[0].body) > 540_000
    attempt = Attempt.objects.get()
    assert len(attempt.request_body) < 2 * 1024
    shown = json.loads(attempt.request_body)
    assert shown["id"] == "j1" and shown["output"]["images"][0].endswith(" bytes]")


def test_a_redelivery_sends_the_whole_payload_again(receiver):
    make_webhook(receiver.url)
    payload = {"output": IMAGE}
    hooks.emit(TEST_EVENT, payload)
    deliver_due()
    assert hooks.redeliver(Delivery.objects.all()) == 1
    deliver_due()
    assert receiver.wait_for(2) and [json.loads(r.body) for r in receiver.requests] == [payload] * 2


def test_templates_get_the_large_values_and_chat_formats_the_rows_fields(receiver):
    upload = make_webhook(receiver.url, data_template='[discord_image]{"content": "%prompt%"}')
    templated = make_webhook(receiver.url, data_template='{"img": "%image%", "p": "%prompt%"}')
    chat = make_webhook(receiver.url, format="discord")
    hooks.emit(TEST_EVENT, {"prompt": "a cat", "image": IMAGE})
    assert deliver_due() == 3 and receiver.wait_for(3)
    got = {r.headers["X-Webhookhub-Hook"]: r for r in receiver.requests}
    sent = got[str(upload.pk)]
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + sent.headers["Content-Type"].encode() + b"\r\n\r\n" + sent.body
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert parts["file"].get_content() == PNG
    assert json.loads(got[str(templated.pk)].body) == {"img": IMAGE, "p": "a cat"}
    assert set(json.loads(got[str(chat.pk)].body)) == {"content"}
    for attempt in Attempt.objects.all():
        assert len(attempt.request_body) < 4 * 1024


def test_send_now_sends_a_large_payload_whole(receiver):
    hook = make_webhook(receiver.url)
    [attempt] = hooks.send_now(TEST_EVENT, {"output": IMAGE}, webhooks=[hook])
    assert attempt.succeeded and json.loads(receiver.requests[0].body) == {"output": IMAGE}
    assert len(attempt.request_body) < 2 * 1024


def test_payload_filters_match_the_whole_payload(receiver):
    make_webhook(receiver.url, payload_filter={"path": "output.0.kind", "eq": "png"})
    hooks.emit(TEST_EVENT, {"output": [{"kind": "png", "data": IMAGE}]})
    hooks.emit(TEST_EVENT, {"output": [{"kind": "gif", "data": IMAGE}]})
    assert Delivery.objects.count() == 1


def test_the_prune_deletes_values_once_no_event_carries_them(receiver):
    make_webhook(receiver.url)
    hooks.emit(TEST_EVENT, {"output": IMAGE})
    hooks.emit(TEST_EVENT, {"again": IMAGE})  # shares the value (stored within the hour)
    deliver_due()
    long_ago = timezone.now() - timedelta(days=40)
    older, newer = Event.objects.order_by("created_at")
    Event.objects.filter(pk=older.pk).update(created_at=long_ago)
    LargeValue.objects.update(created_at=long_ago)
    gone = retention.prune(timezone.now() - timedelta(days=30))
    assert gone["events"] == 1 and gone["large_values"] == 0  # the newer event carries it
    Event.objects.update(created_at=long_ago)
    gone = retention.prune(timezone.now() - timedelta(days=30))
    assert gone["events"] == 1 and gone["large_values"] == 1
    assert not LargeValue.objects.exists() and not EventValue.objects.exists()

"""A webhook's feed (GET /api/v1/webhooks/<id>/feed): what it was sent, in the order it
was made, page by page from an opaque cursor, with bodies, headers as sent and headers
signed again at read time (verified with the standardwebhooks library)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, connections
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

import hooks
from hooks.models import Attempt, Delivery, Event, EventValue, LargeValue, Scope
from hooks.outgoing.request import MASK
from hooks.tools import feed, retention
from hooks.tools.receiver import Reply
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook
from tests.test_api_webhooks import Api, person

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def settled_at_once(settings):
    """Deliveries are handed out as soon as they are made (the window has its own test)."""
    settings.WEBHOOK_FEED_SETTLE_SECONDS = 0


@pytest.fixture
def world(receiver):
    from namespaces.models import Namespace

    owner, stranger = person("olga"), person("sam")
    space = Namespace.objects.create(name="acme", path="acme", owner=owner)
    hook = make_webhook(receiver.url, scope=Scope.NAMESPACE, namespace=space.key, name="ci")
    return {"owner": owner, "stranger": stranger, "space": space, "hook": hook}


def emit(world, n: int) -> Delivery:
    hooks.emit(TEST_EVENT, {"n": n}, namespace=world["space"].key)
    return Delivery.objects.filter(webhook=world["hook"]).order_by("-created_at").first()


def page(api: Api, hook, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = api("GET", f"/webhooks/{hook.pk}/feed?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def body_of(item: dict) -> bytes:
    if item["body_encoding"] == "base64":
        return base64.b64decode(item["body"])
    return item["body"].encode()


def test_pages_come_in_the_order_made_and_the_cursor_resumes_after_the_last_one(world):
    api = Api(world["owner"])
    made = [emit(world, n) for n in range(5)]
    twins = Delivery.objects.filter(pk__in=[made[1].pk, made[2].pk])
    twins.update(created_at=made[1].created_at)  # made in the same instant: by id
    order = [str(d.pk) for d in Delivery.objects.order_by("created_at", "pk")]
    seen, after, pages = [], None, 0
    while True:
        got = page(api, world["hook"], limit=2, **({"after": after} if after else {}))
        seen += [item["id"] for item in got["deliveries"]]
        after, pages = got["next"], pages + 1
        if not got["has_more"]:
            break
    assert seen == order and pages == 3
    number = {str(d.pk): n for n, d in enumerate(made)}
    bodies = [json.loads(i["body"])["n"] for i in page(api, world["hook"])["deliveries"]]
    assert bodies == [number[pk] for pk in order]
    assert page(api, world["hook"], after=after)["deliveries"] == []  # the end, for now
    newer = emit(world, 5)
    again = page(api, world["hook"], after=after)
    assert [i["id"] for i in again["deliveries"]] == [str(newer.pk)]
    assert again["next"] != after and not again["has_more"]
    item_cursor = page(api, world["hook"])["deliveries"][2]["cursor"]
    assert [i["id"] for i in page(api, world["hook"], after=item_cursor)["deliveries"]] == (
        order[3:] + [str(newer.pk)]
    )


def test_after_now_starts_at_the_end_and_only_newer_deliveries_follow(world):
    api = Api(world["owner"])
    emit(world, 1)
    start = page(api, world["hook"], after="now")
    assert start["deliveries"] == [] and not start["has_more"]
    later = emit(world, 2)
    assert [i["id"] for i in page(api, world["hook"], after=start["next"])["deliveries"]] == [
        str(later.pk)
    ]


def test_a_delivery_is_handed_out_only_once_its_transaction_has_surely_committed(world, settings):
    """A row whose created_at is inside the settle window may belong to a transaction
    that commits later with rows made earlier still; a cursor must not pass them."""
    settings.WEBHOOK_FEED_SETTLE_SECONDS = 60
    old, young = emit(world, 1), emit(world, 2)
    now = timezone.now()
    Delivery.objects.filter(pk=old.pk).update(created_at=now - timedelta(seconds=120))
    Delivery.objects.filter(pk=young.pk).update(created_at=now - timedelta(seconds=30))
    first = feed.read_feed(world["hook"], None, now=now)
    assert [i["id"] for i in first["deliveries"]] == [str(old.pk)]
    assert first["settled_until"] == now - timedelta(seconds=60)
    # Committed late, made before `young` but after the cursor's position: not skipped.
    late = emit(world, 3)
    Delivery.objects.filter(pk=late.pk).update(created_at=now - timedelta(seconds=45))
    later = feed.read_feed(world["hook"], first["next"], now=now + timedelta(seconds=61))
    assert [i["id"] for i in later["deliveries"]] == [str(late.pk), str(young.pk)]
    end = feed.read_feed(world["hook"], "now", now=now)
    assert end["deliveries"] == []
    from_end = feed.read_feed(world["hook"], end["next"], now=now + timedelta(seconds=61))
    assert [i["id"] for i in from_end["deliveries"]] == [str(late.pk), str(young.pk)]


def test_bodies_headers_as_sent_and_headers_signed_again_verify(world, receiver):
    hook = world["hook"]
    hook.headers = {"X-Api-Key": "top-secret"}
    hook.basic_auth_username, hook.basic_auth_password = "bob", "hunter2"
    hook.save()
    sent = emit(world, 1)
    assert deliver_due() == 1
    waiting = emit(world, 2)  # not attempted yet
    api = Api(world["owner"])
    got = page(api, hook)
    done, pending = got["deliveries"]
    assert (done["id"], pending["id"]) == (str(sent.pk), str(waiting.pk))
    assert done["outcome"] == "succeeded" and done["attempts"] == 1
    assert done["response_status"] == 200 and pending["outcome"] == "pending"
    received = receiver.requests[0]
    assert body_of(done) == received.body
    attempt = Attempt.objects.get(delivery=sent)
    assert done["headers"] == attempt.request_headers  # as sent, as history keeps them
    assert done["headers"]["webhook-signature"] == received.headers["webhook-signature"]
    Verifier(hook.secret).verify(body_of(done), done["headers"])  # then's signature
    for item in (done, pending):
        assert item["headers"]["X-Api-Key"] == MASK and item["headers"]["Authorization"] == MASK
        signed = item["signed_headers"]
        assert "X-Api-Key" not in signed and "Authorization" not in signed
        assert signed["webhook-timestamp"] == str(got["signed_at"])
        assert Verifier(hook.secret).verify(body_of(item), signed) == {
            "n": int(item is not done) + 1
        }
    text = json.dumps(got)
    assert "top-secret" not in text and "hunter2" not in text and hook.secret not in text


def test_while_a_secret_rotates_the_fresh_headers_carry_both_signatures(world):
    hook = world["hook"]
    old_secret = hook.secret
    emit(world, 1)
    rotated = Api(world["owner"])("POST", f"/webhooks/{hook.pk}/rotate-secret").json()
    item = page(Api(world["owner"]), hook)["deliveries"][0]
    for secret in (old_secret, rotated["secret"]):
        Verifier(secret).verify(body_of(item), item["signed_headers"])
    with pytest.raises(WebhookVerificationError):
        Verifier(hooks.generate_secret()).verify(body_of(item), item["signed_headers"])


def test_someone_elses_webhook_is_not_found_and_a_foreign_cursor_is_refused(world, receiver):
    emit(world, 1)
    stranger = Api(world["stranger"])
    response = stranger("GET", f"/webhooks/{world['hook'].pk}/feed")
    assert response.status_code == 404
    assert response.json() == {"error": f"No webhook {world['hook'].pk} that you manage.",
                               "field": "id"}  # fmt: skip
    hooks.emit(TEST_EVENT, {"n": 2}, user=world["stranger"])
    theirs = stranger("PUT", "/notification", {"url": receiver.url, "signed": True}).json()
    mine = page(Api(world["owner"]), world["hook"])["next"]
    refused = stranger("GET", f"/webhooks/{theirs['id']}/feed?after={mine}")
    assert refused.status_code == 400 and refused.json()["field"] == "after"
    assert "another webhook's feed" in refused.json()["error"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("after=garbage", "after: not a cursor of a feed"),
        ("after=" + base64.urlsafe_b64encode(b"f9:1:2:3").decode(), "after: not a cursor"),
        ("after=" + base64.urlsafe_b64encode(b"f1:1:x:" + b"0" * 32).decode(), "not a cursor"),
        ("limit=0", "limit: between 1 and 200."),
        ("limit=201", "limit: between 1 and 200."),
    ],
)
def test_a_bad_cursor_or_limit_is_a_clear_400(world, query, message):
    emit(world, 1)
    response = Api(world["owner"])("GET", f"/webhooks/{world['hook'].pk}/feed?{query}")
    assert response.status_code == 400 and message in response.json()["error"]


def test_a_cursor_outlives_the_pruned_deliveries_it_points_at(world):
    api = Api(world["owner"])
    first, second, third = emit(world, 1), emit(world, 2), emit(world, 3)
    Delivery.objects.update(status="succeeded", completed_at=timezone.now())
    Event.objects.filter(pk__in=[first.event_id, second.event_id]).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    after = page(api, world["hook"], limit=2)["next"]  # points at `second`
    assert retention.prune(timezone.now() - timedelta(days=30))["deliveries"] == 2
    assert [i["id"] for i in page(api, world["hook"], after=after)["deliveries"]] == [str(third.pk)]
    assert [i["id"] for i in page(api, world["hook"])["deliveries"]] == [str(third.pk)]


def test_large_values_are_put_back_and_pruned_ones_are_said_missing(world, settings):
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 20_000
    big = "x" * 30_000
    hooks.emit(TEST_EVENT, {"n": 1, "log": big}, namespace=world["space"].key)
    api = Api(world["owner"])
    item = page(api, world["hook"])["deliveries"][0]
    assert json.loads(item["body"]) == {"n": 1, "log": big} and item["body_missing"] == ""
    Verifier(world["hook"].secret).verify(body_of(item), item["signed_headers"])
    links = EventValue.objects.all()
    values = list(links.values_list("value_id", flat=True))
    links.delete()
    LargeValue.objects.filter(pk__in=values).delete()
    gone = page(api, world["hook"])["deliveries"][0]
    assert gone["body"] is None and gone["signed_headers"] is None
    assert "no longer kept" in gone["body_missing"] and gone["outcome"] == "pending"


def test_staff_who_may_only_view_a_server_webhook_get_no_fresh_signatures(receiver):
    server = make_webhook(receiver.url)
    hooks.emit(TEST_EVENT, {"n": 1})
    viewer = person("vera", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhook"))
    item = page(Api(viewer), server)["deliveries"][0]
    assert item["body"] and item["headers"] and item["signed_headers"] is None
    viewer.user_permissions.add(Permission.objects.get(codename="change_webhook"))
    item = page(Api(viewer), server)["deliveries"][0]
    Verifier(server.secret).verify(body_of(item), item["signed_headers"])


def test_a_failed_delivery_reports_its_outcome(world, receiver):
    receiver.respond = lambda request: Reply(500, body=b"nope")
    emit(world, 1)
    Delivery.objects.update(max_attempts=1)
    assert deliver_due() == 1
    item = page(Api(world["owner"]), world["hook"])["deliveries"][0]
    assert item["outcome"] == "failed" and item["response_status"] == 500
    assert item["completed_at"] and item["attempts"] == 1


def test_the_feed_is_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    operation = paths["/api/v1/webhooks/{pk}/feed"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"pk", "after", "limit"}


def test_an_upload_with_its_image_comes_base64_and_its_signature_covers_the_bytes(world):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    world["hook"].data_template = '[discord_image] {"content": "%prompt%"}'
    world["hook"].save()
    image = "data:image/png;base64," + base64.b64encode(png).decode()
    hooks.emit(TEST_EVENT, {"prompt": "a cat", "image": image}, namespace=world["space"].key)
    item = page(Api(world["owner"]), world["hook"])["deliveries"][0]
    assert item["body_encoding"] == "base64"
    content = body_of(item)
    assert png in content and b'{"content": "a cat"}' in content
    assert item["signed_headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    Verifier(world["hook"].secret).verify(content, item["signed_headers"], json_parse=False)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's open transactions")
def test_on_postgresql_a_transaction_still_open_holds_the_feed_back(world, settings):
    """Deliveries an open transaction may still commit were made after it began: while it
    is open, nothing made after its start (less the window) is handed out."""
    settings.WEBHOOK_FEED_SETTLE_SECONDS = 1
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("SELECT 1")  # its transaction begins
        made = emit(world, 1)
        later = timezone.now() + timedelta(seconds=10)
        assert feed.read_feed(world["hook"], None, now=later)["deliveries"] == []
        other.rollback()
    finally:
        other.close()
    got = feed.read_feed(world["hook"], None, now=later)["deliveries"]
    assert [i["id"] for i in got] == [str(made.pk)]

"""The management API (/api/v1/webhooks, /api/v1/notification): the same permissions,
validation and URL rules as the pages, against real receivers."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from standardwebhooks.webhooks import Webhook as Verifier

import hooks
from accounts.models import ApiToken
from hooks.models import Attempt, Delivery, Scope, Webhook
from hooks.worker.attempt import deliver_due
from namespaces.models import Collaborator, Namespace
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db(transaction=True)


def person(name: str, **extra):
    from django.contrib.auth import get_user_model  # the project's user model

    return get_user_model().objects.create_user(name, f"{name}@example.com", "pw", **extra)


class Api:
    def __init__(self, user):
        self.raw = ApiToken.issue(user, f"api {ApiToken.objects.count()}")[1]
        self.client = Client()

    def __call__(self, method: str, path: str, body=None, raw: bytes | None = None):
        call = getattr(self.client, method.lower())
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": "application/json"} if data is not None else {}
        return (
            call(f"/api/v1{path}", data, HTTP_AUTHORIZATION=f"Bearer {self.raw}", **kwargs)
            if data is not None
            else call(f"/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {self.raw}")
        )


@pytest.fixture
def world():
    owner, colleague, stranger = person("olga"), person("carl"), person("sam")
    space = Namespace.objects.create(name="acme", path="acme", owner=owner)
    Collaborator.objects.create(namespace=space, user=colleague)
    return {"owner": owner, "colleague": colleague, "stranger": stranger, "space": space}


def snapshot() -> list:
    return list(Webhook.objects.order_by("pk").values())


def create(api: Api, url: str, **fields):
    return api("POST", "/webhooks", {"namespace": "acme", "url": url, **fields})


def test_an_owner_creates_a_namespace_webhook_whose_secret_signs_its_deliveries(world, receiver):
    api = Api(world["owner"])
    response = create(api, receiver.url, events=["variables"], name="ci")
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["scope"] == "namespace" and made["namespace"] == "acme"
    assert (
        made["events"] == ["variables"] and made["signed"] and made["secret"].startswith("whsec_")
    )
    test = api("POST", f"/webhooks/{made['id']}/test").json()
    assert test["ok"] and test["response_status"] == 200
    got = receiver.requests[-1]
    Verifier(made["secret"]).verify(got.body, got.headers)
    listed = api("GET", "/webhooks").json()
    assert [w["id"] for w in listed] == [made["id"]] and "secret" not in listed[0]
    assert api("GET", f"/webhooks/{made['id']}").json()["url"] == receiver.url


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": "http://10.1.2.3/hook"}, "url", "not allowed"),
        ({"url": "ftp://example.com/x"}, "url", "http"),
        ({"events": []}, "events", "Pick at least one event"),
        ({"events": ["job.finished"]}, "events", "never receives job.finished"),
        ({"events": ["no.such"]}, "events", "no event type"),
        ({"payload_filter": {"path": "a", "equals": 1}}, "payload_filter", "unknown operator"),
        ({"secret": "hunter2"}, "secret", "16 to 256 characters"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"scope": "user"}, "scope", "PUT /api/v1/notification"),
    ],
)
def test_bad_input_is_refused_like_on_the_pages_and_saves_nothing(world, fields, field, message):
    before = snapshot()
    response = create(Api(world["owner"]), fields.pop("url", "https://example.com/h"), **fields)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and message in response.json()["error"]
    assert snapshot() == before


def test_only_the_owner_manages_a_namespaces_webhooks(world, receiver):
    hook = Webhook.objects.get(pk=create(Api(world["owner"]), receiver.url).json()["id"])
    before = snapshot()
    for who in ("colleague", "stranger"):
        api = Api(world[who])
        assert api("GET", "/webhooks").json() == []
        assert create(api, receiver.url + "2").status_code == 404
        for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/test"),
                             ("POST", "/rotate-secret"), ("GET", "/deliveries"),
                             ("POST", "/replay")]:  # fmt: skip
            response = api(method, f"/webhooks/{hook.pk}{path}", {} if method != "GET" else None)
            assert response.status_code == 404, (who, method, path)
            assert "that you manage" in response.json()["error"]
    assert snapshot() == before
    assert Client().get("/api/v1/webhooks").status_code == 401


def test_patch_changes_what_it_names_and_a_refused_patch_nothing(world, receiver):
    api = Api(world["owner"])
    made = create(api, receiver.url, events=["*"]).json()
    response = api("PATCH", f"/webhooks/{made['id']}",
                   {"payload_filter": {"path": "variable.key", "eq": "A"}, "active": False})  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["payload_filter"] == {"path": "variable.key", "eq": "A"}
    assert response.json()["active"] is False and response.json()["url"] == receiver.url
    before = snapshot()
    refused = api("PATCH", f"/webhooks/{made['id']}", {"url": "http://169.254.169.254/x"})
    assert refused.status_code == 400 and refused.json()["field"] == "url"
    assert snapshot() == before
    assert api("DELETE", f"/webhooks/{made['id']}").status_code == 204
    assert not Webhook.objects.filter(pk=made["id"]).exists()


def test_deliveries_with_attempts_redelivery_replay_and_rotation(world, receiver):
    api = Api(world["owner"])
    made = create(api, receiver.url, events=["*"]).json()
    hook = Webhook.objects.get(pk=made["id"])
    hook.basic_auth_username, hook.basic_auth_password = "u", "pa55word"
    hook.save()
    hooks.emit(TEST_EVENT, {"n": 1}, namespace=world["space"].key)
    assert deliver_due() == 1
    page = api("GET", f"/webhooks/{hook.pk}/deliveries").json()
    assert len(page) == 1 and page[0]["status"] == "succeeded"
    attempt = page[0]["attempts"][0]
    assert attempt["response_status"] == 200 and json.loads(attempt["request_body"]) == {"n": 1}
    text = json.dumps(page)
    assert "pa55word" not in text and made["secret"] not in text
    delivery_id = page[0]["id"]
    again = api("POST", f"/webhooks/{hook.pk}/deliveries/{delivery_id}/redeliver", {})
    assert again.status_code == 202 and again.json() == {"queued": 1}
    assert deliver_due() == 1
    assert Attempt.objects.filter(delivery_id=delivery_id).count() == 2
    assert receiver.requests[-1].headers["webhook-id"] == receiver.requests[0].headers["webhook-id"]
    Delivery.objects.filter(pk=delivery_id).update(status="failed")
    replayed = api("POST", f"/webhooks/{hook.pk}/replay", {"statuses": ["failed"]})
    assert replayed.status_code == 202 and replayed.json() == {"queued": 1}
    bad = api("POST", f"/webhooks/{hook.pk}/replay", {"since": "2026-02-01T00:00:00Z",
                                                      "until": "2026-01-01T00:00:00Z"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["field"] == "since"
    rotated = api("POST", f"/webhooks/{hook.pk}/rotate-secret").json()
    hook.refresh_from_db()
    assert hook.signing_secrets() == [rotated["secret"], made["secret"]]


def test_server_webhooks_are_for_staff_with_the_admins_permissions(world, receiver):
    body = {"scope": "server", "url": receiver.url, "events": [TEST_EVENT], "name": "ops"}
    plain = Api(world["stranger"])
    assert plain("POST", "/webhooks", body).status_code == 403
    staff = person("stella", is_staff=True)
    assert Api(staff)("POST", "/webhooks", body).status_code == 403
    server = make_webhook(receiver.url.replace("/hook", "/other"))
    assert Api(staff)("GET", f"/webhooks/{server.pk}").status_code == 404  # no view permission
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_webhook", "view_webhook", "change_webhook"])
    )
    api = Api(type(staff).objects.get(pk=staff.pk))
    response = api("POST", "/webhooks", body)
    assert response.status_code == 201, response.content
    made = Webhook.objects.get(pk=response.json()["id"])
    assert made.scope == Scope.SERVER and made.secret == response.json()["secret"]
    changed = api("PATCH", f"/webhooks/{server.pk}", {"name": "renamed"})
    assert changed.status_code == 200 and changed.json()["name"] == "renamed"
    assert api("DELETE", f"/webhooks/{server.pk}").status_code == 403  # no delete permission
    assert {w["id"] for w in api("GET", "/webhooks").json()} >= {server.pk, made.pk}


def test_a_user_sets_and_removes_their_notification_webhook(world, receiver):
    api = Api(world["stranger"])
    refused = api("PUT", "/notification", {"url": "http://10.0.0.1/x"})
    assert refused.status_code == 400 and refused.json()["field"] == "url"
    response = api("PUT", "/notification", {"url": receiver.url, "signed": True})
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "user" and response.json()["secret"].startswith("whsec_")
    hook = Webhook.objects.get(scope=Scope.USER, owner=world["stranger"])
    assert api("PATCH", f"/webhooks/{hook.pk}", {"name": "x"}).status_code == 400
    assert [w["id"] for w in api("GET", "/webhooks").json()] == [hook.pk]
    assert api("PUT", "/notification", {"url": ""}).status_code == 204
    assert not Webhook.objects.filter(pk=hook.pk).exists()

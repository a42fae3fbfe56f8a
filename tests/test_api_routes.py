"""Route events and route webhooks over the management API (APIO's UI is a REST client
of its own): staff with the admin's permissions; the pages' rules; a real receiver gets
APIO's payload with the secret as typed; every change is audited with who made it."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from standardwebhooks.webhooks import Webhook as Verifier

from accounts.models import ApiToken
from hooks.models import Webhook
from hooks.worker.attempt import deliver_due
from routes.models import AuditRecord, RouteWebhook

pytestmark = pytest.mark.django_db(transaction=True)  # route events are written after commit
APIO_SECRET = "apio shared secret 42"


class Api:
    def __init__(self, user):
        self.raw = ApiToken.issue(user, f"api {ApiToken.objects.count()}")[1]
        self.client = Client()

    def __call__(self, method: str, path: str, body=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {self.raw}"}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(self.client, method.lower())(path, **kwargs)


@pytest.fixture
def staff():
    return get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")


def test_staff_define_a_route_webhook_over_the_api_and_it_fires_as_apios(staff, receiver):
    api = Api(staff)
    made = api("POST", "/api/v1/route-events",
               {"label": "job submitted", "method": "POST", "pattern": "^/v2/echo/run$"})  # fmt: skip
    assert made.status_code == 201, made.content
    event_id = made.json()["id"]
    created = api("POST", "/api/v1/route-webhooks", {
        "name": "apio", "url": receiver.url, "events": [event_id],
        "secret": APIO_SECRET, "headers": {"X-Apio-Key": "k-1"},
    })  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"] is None and body["signed"] and body["headers"] == ["X-Apio-Key"]
    assert APIO_SECRET not in api("GET", f"/api/v1/route-webhooks/{body['id']}").content.decode()

    called = api("POST", "/v2/echo/run", {"input": {"prompt": "hi"}})
    assert called.status_code == 200
    assert deliver_due() == 1
    [got] = receiver.requests
    payload = json.loads(got.body)
    assert payload["event"] == {"id": event_id, "label": "job submitted"}
    assert payload["secret"] == APIO_SECRET and got.headers["X-Apio-Key"] == "k-1"
    Verifier(APIO_SECRET.encode()).verify(got.body, got.headers)

    history = api("GET", f"/api/v1/route-webhooks/{body['id']}/history").json()
    assert [h["id"] for h in history] == [payload["id"]]  # APIO's unique id
    assert APIO_SECRET not in json.dumps(history)  # shown masked
    tested = api("POST", f"/api/v1/route-webhooks/{body['id']}/test").json()
    assert tested["ok"] and json.loads(receiver.requests[-1].body)["event"]["label"] == "test event"

    rotated = api("PATCH", f"/api/v1/route-webhooks/{body['id']}",
                  {"name": "apio v2", "secret_action": "generate"}).json()  # fmt: skip
    assert rotated["secret"].startswith("whsec_") and rotated["previous_secret_valid_until"]
    assert rotated["secret"] not in api("GET", "/api/v1/route-webhooks").content.decode()
    who = set(AuditRecord.objects.values_list("actor_label", flat=True))
    assert who == {"ops"}, who


def test_route_api_refuses_what_the_admin_refuses_and_changes_nothing(staff, ann):
    api = Api(staff)
    bad_pattern = api("POST", "/api/v1/route-events", {"label": "x", "pattern": "(a+)+$"})
    assert bad_pattern.status_code == 400 and bad_pattern.json()["field"] == "pattern"
    unknown = api("POST", "/api/v1/route-webhooks",
                  {"name": "n", "url": "https://example.com/h", "events": [999]})  # fmt: skip
    assert unknown.status_code == 400 and "no route event 999" in unknown.json()["error"]
    short = api("POST", "/api/v1/route-webhooks",
                {"name": "n", "url": "https://example.com/h", "secret": "hunter2"})  # fmt: skip
    assert short.status_code == 400 and "16 to 256 characters" in short.json()["error"]
    assert not Webhook.objects.exists() and not RouteWebhook.objects.exists()
    user = Api(ann)
    assert user("GET", "/api/v1/route-webhooks").status_code == 403
    assert (
        user("POST", "/api/v1/route-events", {"label": "x", "pattern": "^/x$"}).status_code == 403
    )
    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/route-webhooks/{pk}/history" in paths and "/api/v1/route-events" in paths

"""POST /api/v1/events: declared event types from outside producers, Idempotency-Key,
and the OpenAPI document of /api/v1 and /v2."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import URLPattern, URLResolver
from django.utils import timezone
from openapi_spec_validator import validate

from accounts.models import ApiToken
from api import idempotency
from api.models import IdempotencyKey
from hooks import catalog
from hooks.models import DeclaredEventType, Delivery, Event, Scope
from hooks.tools.forms import WebhookForm
from hooks.worker.attempt import deliver_due
from jobs import urls as job_urls
from namespaces.models import Collaborator, Namespace
from tests.conftest import db_thread, make_webhook, verify

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/events"


@pytest.fixture
def declared():
    return DeclaredEventType.objects.create(
        name="invoice.paid", description="An invoice was paid.", example={"amount": 10},
        for_server=True, for_users=True, for_namespaces=True,
    )  # fmt: skip


@pytest.fixture
def producer(ann):
    token, raw = ApiToken.issue(ann, "billing")
    token.can_post_events = True
    token.save()
    return raw


def post(client, raw: str | None, body, key: str | None = None, raw_body: bytes | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    data = raw_body if raw_body is not None else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers)


def paid(**extra) -> dict:
    return {"type": "invoice.paid", "payload": {"invoice": "in_1", "amount": 12}, **extra}


def test_a_declared_event_is_delivered_signed_to_its_subscriber(client, producer, declared,
                                                                 receiver):  # fmt: skip
    webhook = make_webhook(receiver.url, event_types=["invoice.paid"])
    response = post(client, producer, paid())
    assert response.status_code == 202, response.content
    answer = response.json()
    event = Event.objects.get(type="invoice.paid")
    assert answer == {"id": str(event.id), "type": "invoice.paid",
                      "created_at": answer["created_at"], "deliveries": 1}  # fmt: skip
    assert deliver_due() == 1
    assert verify(webhook, receiver.requests[0]) == {"invoice": "in_1", "amount": 12}


def test_the_same_idempotency_key_twice_delivers_once(client, producer, declared, receiver):
    make_webhook(receiver.url, event_types=["invoice.paid"])
    first = post(client, producer, paid(), key="order-1")
    again = post(client, producer, paid(), key="order-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Event.objects.filter(type="invoice.paid").count() == 1
    assert deliver_due() == 1 and deliver_due() == 0
    assert len(receiver.requests) == 1
    other = post(client, producer, paid(), key="order-2")  # another key is another event
    assert other.status_code == 202 and Event.objects.filter(type="invoice.paid").count() == 2


def test_a_key_reused_with_another_body_is_refused(client, producer, declared):
    post(client, producer, paid(), key="k")
    response = post(client, producer, paid(payload={"invoice": "in_2"}), key="k")
    assert response.status_code == 422
    assert "another request body" in response.json()["error"]
    assert Event.objects.filter(type="invoice.paid").count() == 1


def test_keys_belong_to_their_account_and_expire_after_a_day(client, producer, declared, ann):
    post(client, producer, paid(), key="k")
    other = ApiToken.issue(
        type(ann).objects.create_user("bo@example.com", "bo@example.com", "pw"), "b"
    )
    other[0].can_post_events = True
    other[0].save()
    assert post(client, other[1], paid(), key="k").status_code == 202  # not Ann's answer
    assert Event.objects.filter(type="invoice.paid").count() == 2
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert "Idempotent-Replayed" not in post(client, producer, paid(), key="k")
    assert Event.objects.filter(type="invoice.paid").count() == 3
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency.forget_expired() == 2 and not IdempotencyKey.objects.exists()


def test_a_refused_request_keeps_no_key(client, producer, declared):
    assert (
        post(client, producer, {"type": "invoice.paid", "payload": []}, key="k").status_code == 400
    )
    assert post(client, producer, paid(), key="k").status_code == 202  # corrected, same key
    assert not IdempotencyKey.objects.filter(status__gte=400).exists()


def test_racing_requests_with_one_key_write_one_event(producer, declared):
    answers = []

    def send():
        answers.append(post(Client(), producer, paid(), key="race"))

    threads = [db_thread(send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202] * 4
    assert len({a.json()["id"] for a in answers}) == 1
    assert Event.objects.filter(type="invoice.paid").count() == 1 and Delivery.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"payload": {}}, 400, "type: Field required."),
        ({"type": "invoice.paid"}, 400, "payload: Field required."),
        ({"type": "invoice.paid", "payload": [1]}, 400, "payload: Input should be a valid dict"),
        ({"type": "invoice.paid", "payload": {}, "extra": 1}, 400, "extra: Extra inputs"),
        ({"type": "user.signup", "payload": {}}, 400, "Unknown event type 'user.signup'"),
        ({"type": "nope", "payload": {}}, 400, "Unknown event type 'nope'"),
        ({**paid(), "namespace": "no/such"}, 400, "may address only a namespace its user"),
        ({**paid(), "user": 99999}, 400, "may address only its own user"),
        ({**paid(), "user": "nobody@example.com"}, 400, "may address only its own user"),
        ([1, 2], 400, "must be a JSON object"),
    ],
)
def test_bad_input_is_a_clear_json_error_and_writes_nothing(client, producer, declared, body,
                                                            status, message):  # fmt: skip
    response = post(client, producer, body, key="k")
    assert response.status_code == status
    assert message in response.json()["error"]
    assert (
        not Event.objects.filter(type="invoice.paid").exists()
        and not IdempotencyKey.objects.exists()
    )


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b'{"type": "invoice.paid", "payload": {"a": NaN}}', 400, "NaN is not a JSON number"),
        (b'{"type": ', 400, "not valid JSON"),
        (
            b'{"type": "invoice.paid", "payload": ' + b'{"a": ' * 479 + b"{}" + b"}" * 480,
            400,
            "more than 100 levels deep",
        ),
        (None, 413, "larger than"),
    ],
)
def test_bad_json_is_refused(client, producer, declared, settings, raw, status, message):
    if raw is None:
        settings.WEBHOOK_MAX_PAYLOAD_BYTES = 1000
        raw = json.dumps(paid(payload={"x": "a" * 100_000})).encode()  # over the body limit
    response = post(client, producer, None, raw_body=raw)
    assert response.status_code == status and message in response.json()["error"]
    assert not Event.objects.filter(type="invoice.paid").exists()


def test_a_payload_over_the_limit_is_413(client, producer, declared, settings):
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 1000
    response = post(client, producer, paid(payload={"x": "a" * 2000}))
    assert response.status_code == 413 and response.json()["field"] == "payload"
    assert not Event.objects.filter(type="invoice.paid").exists()


def test_tokens_without_the_scope_or_no_token_are_refused(client, ann, declared):
    _, plain = ApiToken.issue(ann, "plain")
    response = post(client, plain, paid())
    assert response.status_code == 403 and "may not post events" in response.json()["error"]
    response = post(client, None, paid())
    assert response.status_code == 401 and "Bearer" in response.json()["error"]
    assert post(client, "whk_wrong", paid()).status_code == 401
    bad_key = post(client, plain, paid(), key="a\nb")
    assert bad_key.status_code == 403  # the scope is checked first; the key next
    assert not Event.objects.filter(type="invoice.paid").exists()


def test_a_malformed_key_is_refused(client, producer, declared):
    response = post(client, producer, paid(), key="x" * 256)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["error"]
    assert not Event.objects.filter(type="invoice.paid").exists()


def test_user_and_namespace_webhooks_receive_their_events(client, producer, declared, ann,
                                                          receiver):  # fmt: skip
    server = make_webhook(receiver.url, event_types=["invoice.paid"])
    mine = make_webhook(receiver.url, scope=Scope.USER, owner=ann, event_types=["invoice.paid"])
    space = Namespace.objects.create(name="acme", path="acme", owner=ann)
    ns_hook = make_webhook(receiver.url, scope=Scope.NAMESPACE, namespace=space.key,
                           event_types=["invoice.paid"])  # fmt: skip
    assert post(client, producer, paid(user="ann@example.com")).json()["deliveries"] == 2
    assert post(client, producer, paid(namespace="acme")).json()["deliveries"] == 2
    got = sorted(Delivery.objects.values_list("webhook_id", flat=True))
    assert got == sorted([server.pk, mine.pk, server.pk, ns_hook.pk])


def test_declared_types_are_validated(declared):
    for name, field in [("user.signup", "name"), ("Bad Name", "name")]:
        with pytest.raises(ValidationError) as refused:
            DeclaredEventType(name=name, description="x").full_clean()
        assert field in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        DeclaredEventType(name="a.b", description="x", for_server=False).full_clean()
    assert "at least one" in refused.value.message_dict["for_server"][0]
    with pytest.raises(ValidationError) as refused:
        DeclaredEventType(name="a.b", description="x", example=[1]).full_clean()
    assert "JSON object" in refused.value.message_dict["example"][0]


def test_a_declared_type_can_be_subscribed_to_and_reaches_other_processes(monkeypatch):
    choices = lambda: {n for _, group in WebhookForm().fields["event_types"].choices  # noqa: E731
                       for n, _ in (group if isinstance(group, list) else [])}  # fmt: skip
    assert "deploy.done" not in choices()
    DeclaredEventType.objects.create(name="deploy.done", description="Deployed.")
    assert "deploy.done" in choices()  # this process: at once
    # Another process's declaration arrives within RELOAD; a miss reloads sooner.
    DeclaredEventType.objects.filter(name="deploy.done").update(description="Changed.")
    monkeypatch.setattr(catalog, "RELOAD", 0.0)
    assert catalog.get("deploy.done").description == "Changed."


def test_the_admin_declares_types(admin_client):
    response = admin_client.post(
        "/admin/hooks/declaredeventtype/add/",
        {"name": "user.signup", "description": "x", "example": "{}", "for_server": "on"},
    )
    assert response.status_code == 200 and b"one of the hub" in response.content
    assert not DeclaredEventType.objects.exists()
    response = admin_client.post(
        "/admin/hooks/declaredeventtype/add/",
        {"name": "shop.order", "description": "An order.", "example": '{"id": 1}',
         "for_server": "on"},
    )  # fmt: skip
    assert response.status_code == 302 and DeclaredEventType.objects.get().example == {"id": 1}


def _v2_routes() -> set[tuple[str, str]]:
    """Every /v2 route Django serves to API clients, with the one method its view accepts
    (not RunPod's worker protocol: its callers are runpod-python workers, with keys of
    their own; docs/jobs.md describes it)."""
    found = set()
    for entry in job_urls.urlpatterns:
        pattern = str(getattr(entry, "pattern", ""))
        worker_route = (
            getattr(getattr(entry, "callback", None), "__module__", "") == "jobs.worker_api"
        )
        if isinstance(entry, URLResolver | URLPattern) and pattern and not worker_route:
            found.add(pattern)
    return found


def test_the_openapi_document_validates_and_covers_both_apis(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    paths = document["paths"]
    assert "post" in paths["/api/v1/events"]
    assert {"get", "post"} <= set(paths["/api/v1/webhooks"]) and "put" in paths[
        "/api/v1/notification"
    ]
    assert "requestBody" in paths["/api/v1/webhooks/{pk}"]["patch"]
    v2 = {path for path in paths if path.startswith("/v2/")}
    served = {"/v2/" + p.replace("<", "{").replace(">", "}") for p in _v2_routes()}
    assert v2 == served and len(v2) == 11  # RunPod's eight, tag, pin and unpin
    assert paths["/v2/{endpoint}/run"]["post"]["requestBody"]["content"]["application/json"]
    assert document["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.content


def test_v2_routes_keep_their_json_refusals_through_ninja(api):
    response = api("GET", "/v2/echo/run")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json() == {"error": "Use POST here."}
    assert api("GET", "/v2/echo/nothing-here").status_code == 404


def test_a_user_chooses_on_their_settings_page_which_events_addressed_to_them_arrive(
    client, producer, declared, ann, receiver
):
    from django.test import Client

    from accounts import notification

    page = Client()
    page.force_login(ann)
    settings_page = page.get("/accounts/settings/").content.decode()
    assert 'value="invoice.paid"' in settings_page and 'value="job.finished"' in settings_page
    assert "integrations address to you" in settings_page  # it says what arrives
    form = {"url": receiver.url, "events": ["job.finished"], "secret_action": "remove"}
    page.post("/accounts/notification/", form)
    assert notification.webhook_of(ann).event_types == ["job.finished"]
    assert post(client, producer, paid(user="ann@example.com")).json()["deliveries"] == 0
    page.post("/accounts/notification/", {**form, "events": ["*", "job.finished"]})
    assert notification.webhook_of(ann).event_types == ["*"]
    assert post(client, producer, paid(user="ann@example.com")).json()["deliveries"] == 1


def test_with_user_webhooks_switched_off_an_event_addressed_to_a_user_reaches_no_user_webhook(
    client, producer, declared, ann, receiver, settings
):
    make_webhook(receiver.url, scope=Scope.USER, owner=ann, event_types=["invoice.paid"])
    server = make_webhook(receiver.url, event_types=["invoice.paid"])
    settings.ENABLE_USER_WEBHOOKS = False
    assert post(client, producer, paid(user="ann@example.com")).json()["deliveries"] == 1
    assert list(Delivery.objects.values_list("webhook_id", flat=True)) == [server.pk]


# --- whom an event may address -----------------------------------------------------------
@pytest.fixture
def bo(django_user_model):
    return django_user_model.objects.create_user("bo", "bo@example.com", "pw", name="Bo")


@pytest.fixture
def bos_receivers(bo, receiver):
    """Bo's private namespace and his notification webhook, both on a real receiver."""
    space = Namespace.objects.create(name="bo-private", path="bo-private", owner=bo)
    inside = Namespace.objects.create(name="inner", path="bo-private/inner", owner=bo,
                                      parent=space, root=space, visibility="internal")  # fmt: skip
    hooks = [
        make_webhook(receiver.url + "/ns", scope=Scope.NAMESPACE, namespace=space.key,
                     event_types=["invoice.paid"]),
        make_webhook(receiver.url + "/inner", scope=Scope.NAMESPACE, namespace=inside.key,
                     event_types=["invoice.paid"]),
        make_webhook(receiver.url + "/user", scope=Scope.USER, owner=bo,
                     event_types=["invoice.paid"]),
    ]  # fmt: skip
    return space, hooks


ADDRESSED_ELSEWHERE = [
    {"namespace": "bo-private"},  # another user's private namespace
    {"namespace": "bo-private/inner"},  # internal: Ann may look at it, not post into it
    {"user": "bo@example.com"},
    {"user": "BO@example.com"},
    {"user": "bo"},
    {"namespace": "bo-private", "user": "ann@example.com"},
]


@pytest.mark.parametrize("addressed", ADDRESSED_ELSEWHERE)
def test_a_token_cannot_send_into_a_namespace_or_to_a_user_it_may_not_address(
    client, producer, declared, bos_receivers, receiver, addressed
):
    make_webhook(receiver.url + "/server", event_types=["invoice.paid"])
    response = post(client, producer, paid(**addressed), key="k")
    assert response.status_code == 400
    assert response.json()["field"] == next(iter(addressed))
    assert (
        not Event.objects.filter(type="invoice.paid").exists()
        and not IdempotencyKey.objects.exists()
    )
    assert deliver_due() == 0
    assert receiver.requests == []  # nothing signed reached Bo's receivers, nor the server's


@pytest.mark.parametrize(
    ("unknown", "not_allowed"),
    [
        ({"namespace": "no/such"}, {"namespace": "bo-private"}),
        ({"namespace": "no/such"}, {"namespace": "bo-private/inner"}),
        ({"user": 99999}, {"user": "<bo.pk>"}),
        ({"user": "nobody@example.com"}, {"user": "bo@example.com"}),
        ({"user": "nobody"}, {"user": "bo"}),
    ],
)
def test_unknown_and_not_allowed_get_the_same_answer_byte_for_byte(
    client, producer, declared, bo, bos_receivers, unknown, not_allowed
):
    not_allowed = {k: bo.pk if v == "<bo.pk>" else v for k, v in not_allowed.items()}
    first, second = (
        post(client, producer, paid(**unknown)),
        post(client, producer, paid(**not_allowed)),
    )
    assert first.status_code == second.status_code == 400
    assert first.content == second.content
    assert first.headers == second.headers
    assert not Event.objects.filter(type="invoice.paid").exists()


def test_a_member_addresses_their_namespaces_and_themselves(client, declared, ann, bo,
                                                            bos_receivers, receiver):  # fmt: skip
    space, (ns_hook, inner_hook, bos_hook) = bos_receivers
    Collaborator.objects.create(namespace=space, user=ann)  # Ann joins Bo's namespace
    token, raw = ApiToken.issue(ann, "member")
    ApiToken.objects.filter(pk=token.pk).update(can_post_events=True)
    assert post(client, raw, paid(namespace="bo-private")).status_code == 202
    assert post(client, raw, paid(namespace="bo-private/inner")).status_code == 202
    assert post(client, raw, paid(user="bo@example.com")).status_code == 400  # still Bo's own
    assert deliver_due() == 2
    got = {r.path.removeprefix("/hook"): r for r in receiver.requests}
    assert set(got) == {"/ns", "/inner"}
    assert verify(ns_hook, got["/ns"]) == verify(inner_hook, got["/inner"]) == paid()["payload"]
    _, own = ApiToken.issue(bo, "own")
    ApiToken.objects.filter(user=bo).update(can_post_events=True)
    for me in ("bo", "BO@example.com", bo.pk):  # Bo addresses himself by any of his names
        assert post(client, own, paid(user=me)).json()["deliveries"] == 1


def test_staff_let_a_token_address_anyone_in_the_admin(admin_client, client, producer, declared,
                                                       bos_receivers, receiver):  # fmt: skip
    _, (ns_hook, _, bos_hook) = bos_receivers
    token = ApiToken.objects.get(name="billing")
    assert post(client, producer, paid(namespace="bo-private")).status_code == 400
    page = admin_client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert "May address any user or namespace" in page
    response = admin_client.post(f"/admin/accounts/apitoken/{token.pk}/change/",
                                 {"can_post_events": "on", "may_address_anyone": "on"})  # fmt: skip
    assert response.status_code == 302
    assert post(client, producer, paid(namespace="bo-private")).json()["deliveries"] == 1
    assert post(client, producer, paid(user="bo@example.com")).json()["deliveries"] == 1
    unknown = post(client, producer, paid(namespace="no/such"))  # still one answer for unknown
    assert unknown.status_code == 400 and "no/such" not in unknown.content.decode()
    assert deliver_due() == 2
    got = {r.path.removeprefix("/hook"): r for r in receiver.requests}
    assert verify(ns_hook, got["/ns"]) == verify(bos_hook, got["/user"]) == paid()["payload"]

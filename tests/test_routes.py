"""Route webhooks (APIO): a webhook for any successful API call matching a route event."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpResponse, JsonResponse
from django.test import Client
from django.urls import path, reverse
from standardwebhooks.webhooks import Webhook as Verifier

from accounts.models import ApiToken
from hooks.models import Attempt, Delivery, Event, Webhook
from hooks.worker.attempt import deliver_due
from jobs.models import Job
from routes import matching, scrub
from routes.forms import RouteEventForm, RouteWebhookForm
from routes.models import AuditRecord, RouteEvent, RouteWebhook
from tests.conftest import make_webhook
from webhookhub.urls import urlpatterns as hub_urls

pytestmark = pytest.mark.django_db(transaction=True)  # events are written after commit
User = get_user_model()


def boom(request):
    raise RuntimeError("the view failed")


def ok(request):
    return JsonResponse({"fine": True})


def teapot(request):
    return HttpResponse("no", status=418)


urlpatterns = [path("t/boom", boom), path("t/ok", ok), path("t/teapot", teapot), *hub_urls]


@pytest.fixture(autouse=True)
def test_urls(settings):
    settings.ROOT_URLCONF = __name__
    matching.matcher.invalidate()


@pytest.fixture
def token(ann):
    return ApiToken.issue(ann, "routes")[1]


def route_event(
    label: str = "job submitted", method: str = "POST", pattern: str = r"^/v2/echo/run$"
):
    form = RouteEventForm({"label": label, "method": method, "pattern": pattern})
    assert form.is_valid(), form.errors
    return form.save()


def route_webhook(url: str, *events: RouteEvent, **fields) -> tuple[RouteWebhook, str]:
    data = {"active": "on", "name": "apio", "url": url, "secret_action": "generate",
            "events": [e.pk for e in events], **fields}  # fmt: skip
    form = RouteWebhookForm(data)
    assert form.is_valid(), form.errors
    route = form.save()
    return route, form.new_secret


def submit(client, token, body=None, **extra):
    return client.post("/v2/echo/run?tag=from-query", data=json.dumps(body or {"input": {"prompt": "hi"}}),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)  # fmt: skip


def test_a_matching_call_delivers_once_with_apios_payload(client, token, receiver):
    event = route_event()
    route, secret = route_webhook(
        receiver.url, event, header_name="X-Apio-Key", header_value="k-123",
        basic_auth_username="apio", basic_auth_password="pa55",
    )  # fmt: skip
    response = submit(client, token, HTTP_X_REQUEST_TAG="tag-1")
    assert response.status_code == 200
    assert deliver_due() == 1
    assert deliver_due() == 0 and len(receiver.requests) == 1  # exactly once
    got = receiver.requests[0]
    body = json.loads(got.body)
    delivery = Delivery.objects.get(webhook=route.webhook)
    assert list(body) == ["event", "id", "request", "response", "secret"]
    assert body == {
        "event": {"id": event.pk, "label": "job submitted"},
        "id": str(delivery.id),  # the unique id shown in history
        "request": {"method": "post", "url": "/v2/echo/run?tag=from-query",
                    "body": {"input": {"prompt": "hi"}}, "tag": "tag-1"},
        "response": {"status": 200, "body": response.json()},
        "secret": secret,
    }  # fmt: skip
    assert got.headers["Authorization"] == "Basic " + base64.b64encode(b"apio:pa55").decode()
    assert got.headers["X-Apio-Key"] == "k-123"
    Verifier(secret).verify(got.body, got.headers)


def test_a_pasted_apio_secret_arrives_in_the_payload_as_typed(client, token, receiver):
    typed = "apio shared secret 42"  # any 16-256 printable characters, as APIO allows
    route, shown = route_webhook(
        receiver.url, route_event(), secret_action="paste", pasted_secret=typed
    )
    assert shown == "" and route.webhook.secret == typed
    submit(client, token)
    assert deliver_due() == 1
    [got] = receiver.requests
    assert json.loads(got.body)["secret"] == typed  # the receiver compares it, as APIO's do
    Verifier(typed.encode()).verify(got.body, got.headers)  # keyed with its UTF-8 bytes
    [attempt] = Attempt.objects.filter(delivery__webhook=route.webhook)
    assert typed not in attempt.request_body  # history shows it masked


def test_the_tag_comes_from_the_query_without_a_header(client, token, receiver):
    route_webhook(receiver.url, route_event())
    submit(client, token)
    deliver_due()
    assert json.loads(receiver.requests[0].body)["request"]["tag"] == "from-query"


@pytest.mark.parametrize(
    "method, pattern",
    [("GET", r"^/v2/echo/run$"), ("POST", r"^/v2/sleep/run$"), ("*", r"^/v2/echo/runsync")],
)
def test_a_call_that_does_not_match_delivers_nothing(client, token, receiver, method, pattern):
    route_webhook(receiver.url, route_event(method=method, pattern=pattern))
    assert submit(client, token).status_code == 200
    assert deliver_due() == 0 and not Delivery.objects.exists()


def test_failed_calls_deliver_nothing(client, token, receiver):
    route_webhook(receiver.url, route_event(method="*", pattern=r"^/(v2|t)/"))
    assert submit(client, token, body={"no": "input"}).status_code == 400
    assert client.post("/v2/echo/run").status_code == 401
    assert client.get("/t/teapot").status_code == 418
    quiet = Client(raise_request_exception=False)
    assert quiet.get("/t/boom").status_code == 500
    assert not Delivery.objects.exists()
    assert client.get("/t/ok").status_code == 200  # the same route event does fire on success
    assert Delivery.objects.count() == 1


def test_each_webhook_gets_only_its_route_events(client, token, receiver):
    runs, oks = route_event(), route_event("ok", "GET", r"^/t/ok$")
    first, _ = route_webhook(receiver.url, runs)
    second, _ = route_webhook(receiver.url, oks, name="second")
    make_webhook(receiver.url, name="everything", event_types=["*"])  # not a route webhook
    client.get("/t/ok")
    assert list(Delivery.objects.values_list("webhook", flat=True)) == [second.pk]


def test_credentials_never_reach_the_payload_or_the_history(client, ann, token, receiver):
    route_webhook(receiver.url, route_event("any", "*", r"^/(v2|accounts)/"))
    submit(client, token, body={"input": {"password": "hunter2", "api_key": "k", "text": token}})
    client.force_login(ann)
    client.post(reverse("accounts:create_token"), {"name": "laptop"})  # 302: nothing
    page = client.get(reverse("accounts:settings"))  # shows the new token once
    raw = page.context["new_token"]
    deliver_due()
    sent = "".join(r.body.decode() for r in receiver.requests)
    shown = "".join(Attempt.objects.values_list("request_body", flat=True))
    headers = json.dumps(list(Attempt.objects.values_list("request_headers", flat=True)))
    session = client.cookies["sessionid"].value
    for secret in ("hunter2", token, raw, session):
        assert secret not in sent and secret not in shown and secret not in headers
    calls = [json.loads(r.body) for r in receiver.requests]  # sent concurrently: any order
    [first] = [c for c in calls if c["request"]["url"].startswith("/v2/echo/run")]
    assert first["request"]["body"]["input"]["password"] == "********"
    assert "Authorization" not in json.dumps(first["request"])
    webhook_secret = Webhook.objects.get(name="apio").secret
    assert webhook_secret in sent and webhook_secret not in shown  # APIO sends it; history masks
    assert '"secret":"********"' in shown


def test_bodies_are_cut_at_the_documented_size(client, token, receiver, settings):
    settings.ROUTE_BODY_LIMIT = 100
    route_webhook(receiver.url, route_event())
    submit(client, token, body={"input": {"text": "z" * 500}})
    deliver_due()
    body = json.loads(receiver.requests[0].body)["request"]["body"]
    assert isinstance(body, str) and body.endswith("more bytes]") and len(body) < 200


def nested(levels: int) -> str:
    """JSON text of `levels` objects, each inside the one before."""
    return '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1)


def complaints(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


@pytest.mark.parametrize("levels", [101, 480, 100_000])
def test_json_nested_too_deep_is_refused_before_anything_is_written(token, receiver, caplog,
                                                                    levels):  # fmt: skip
    route_webhook(receiver.url, route_event())
    body = '{"input": ' + nested(levels - 1) + "}"
    with caplog.at_level(logging.WARNING):
        response = Client(raise_request_exception=False).post(
            "/v2/echo/run", data=body, content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )  # fmt: skip
    assert response.status_code == 400
    assert response.json() == {"error": "The request body nests objects and lists more than "
                                        "100 levels deep."}  # fmt: skip
    assert not Job.objects.exists() and not Event.objects.filter(type="route.called").exists()
    assert deliver_due() == 0 and receiver.requests == []
    assert complaints(caplog) == []  # no traceback, no error line


def test_json_at_the_depth_limit_is_taken_and_its_route_event_delivered(client, ann, token,
                                                                        receiver, caplog):  # fmt: skip
    route_webhook(receiver.url, route_event())
    body = '{"input": ' + nested(99) + "}"  # 100 levels, the body's own included
    with caplog.at_level(logging.WARNING):
        response = client.post("/v2/echo/run", data=body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert response.status_code == 200 and Job.objects.count() == 1
    assert deliver_due() == 1
    sent = json.dumps(json.loads(receiver.requests[0].body)["request"]["body"])
    assert sent.startswith('{"input": {"a": {"a": ') and scrub.DEEPER in sent  # cut, not lost
    client.force_login(ann)
    for page in ("/jobs/", f"/jobs/{response.json()['id']}/"):
        assert client.get(page).status_code == 200  # its input shows as JSON, no error
    assert complaints(caplog) == []


def test_a_deep_json_body_to_a_page_keeps_its_answer_and_is_cut(receiver, caplog):
    """(The APIs refuse JSON this deep before anything is written: tests/test_api_events.py.)"""
    route_webhook(receiver.url, route_event("ok", "POST", r"^/t/ok$"))
    with caplog.at_level(logging.WARNING):
        response = Client(raise_request_exception=False).post(
            "/t/ok", data=nested(480), content_type="application/json"
        )
    assert response.status_code == 200  # not the route middleware's 500
    assert deliver_due() == 1
    sent = json.dumps(json.loads(receiver.requests[0].body)["request"]["body"])
    assert sent.startswith('{"a": {"a": ') and scrub.DEEPER in sent  # cut at a bounded depth
    assert complaints(caplog) == []


@pytest.mark.parametrize(
    "pattern, message",
    [("^/v2/(echo", "Not a valid regular expression: missing )"),
     ("(a+)+$", "catastrophic backtracking"), (r"^/(a|aa)+$", "catastrophic backtracking")],
)  # fmt: skip
def test_bad_patterns_are_refused_with_a_clear_message(pattern, message):
    form = RouteEventForm({"label": "bad", "method": "*", "pattern": pattern})
    assert not form.is_valid() and message in form.errors["pattern"][0]
    assert not RouteEvent.objects.exists()


def test_matching_is_bounded_in_time_for_a_pattern_saved_around_the_forms(client, receiver):
    RouteEvent.objects.create(label="slow", method="*", pattern="(a+)+$")
    started = time.monotonic()
    assert client.get("/t/" + "a" * 3000 + "!").status_code == 404
    assert time.monotonic() - started < 5  # unbounded, this takes far longer than a test run


def test_another_process_change_applies_within_the_reload_period(client, receiver, monkeypatch):
    monkeypatch.setattr(matching, "RELOAD", 0.0)
    client.get("/t/ok")  # loaded: no route events
    RouteEvent.objects.bulk_create([RouteEvent(label="ok", method="GET", pattern="^/t/ok$")])
    route_webhook(receiver.url, RouteEvent.objects.get())  # (no signal reached the matcher)
    client.get("/t/ok")
    assert Delivery.objects.count() == 1


def test_the_admin_shows_history_and_sends_a_test_event(admin_client, client, token, receiver):
    route, _ = route_webhook(receiver.url, route_event())
    submit(client, token)
    deliver_due()
    page = admin_client.get(reverse("admin:routes_routewebhook_change", args=[route.pk]))
    html = page.content.decode()
    delivery = Delivery.objects.get()
    assert 'id="deliveries"' in html and str(delivery.id) in html and "POST /v2/echo/run" in html
    assert route.webhook.secret not in html and "pa55" not in html
    assert 'id="send-test"' in html  # a POST button, named as on every webhook page
    assert "State: ok" in html  # its stage, as on every webhook page
    test_url = reverse("admin:routes_routewebhook_test", args=[route.pk])
    assert admin_client.get(test_url).status_code == 405  # a link sends nothing
    answer = admin_client.post(test_url, follow=True)
    assert "Test event: HTTP 200" in answer.content.decode()
    test_body = json.loads(receiver.requests[-1].body)
    assert (
        test_body["event"]["label"] == "test event" and test_body["secret"] == route.webhook.secret
    )


def test_credentials_are_write_only_in_the_form(receiver):
    route, _ = route_webhook(receiver.url, route_event(), header_name="X-Key", header_value="v1",
                             basic_auth_username="u", basic_auth_password="p1")  # fmt: skip
    form = RouteWebhookForm(instance=route)
    rendered = str(form)
    assert "v1" not in rendered and "p1" not in rendered
    data = {**form.initial, "active": "on", "events": [e.pk for e in route.events.all()],
            "secret_action": "keep"}  # fmt: skip
    edited = RouteWebhookForm(data, instance=route)
    assert edited.is_valid(), edited.errors
    edited.save()
    hook = Webhook.objects.get(pk=route.pk)
    assert hook.headers == {"X-Key": "v1"} and hook.basic_auth_password == "p1"  # kept


def test_every_change_is_audited_with_who_and_what(admin_client, admin_user, receiver):
    response = admin_client.post(
        reverse("admin:routes_routeevent_add"),
        {"label": "runs", "method": "POST", "pattern": "^/v2/"},
    )
    assert response.status_code == 302
    event = RouteEvent.objects.get()
    admin_client.post(
        reverse("admin:routes_routeevent_change", args=[event.pk]),
        {"label": "runs", "method": "*", "pattern": "^/v2/"},
    )
    records = list(AuditRecord.objects.order_by("pk"))
    assert [(r.action, r.actor_id) for r in records] == [
        ("created", admin_user.pk),
        ("changed", admin_user.pk),
    ]
    assert records[1].changes == {"method": ["POST", "*"]}
    route, secret = route_webhook(
        receiver.url, event, basic_auth_username="u", basic_auth_password="p1"
    )
    hook = route.webhook
    hook.basic_auth_password = "p2"
    hook.save()  # as a shell or a command would: no web request
    last = AuditRecord.objects.order_by("pk").last()
    assert last.actor is None and "(no web request)" in last.actor_label
    assert last.changes == {"basic_auth_password": ["set", "changed"]}
    everything = json.dumps(list(AuditRecord.objects.values_list("changes", flat=True)))
    assert "p1" not in everything and "p2" not in everything and secret not in everything
    hook.delete()
    assert AuditRecord.objects.order_by("pk").last().action == "deleted"


def test_route_webhooks_are_in_the_webhooks_command_listing(receiver):
    from io import StringIO

    from django.core.management import call_command

    route, _ = route_webhook(receiver.url, route_event())
    out = StringIO()
    call_command("webhooks", "list", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if "apio" in line)
    assert receiver.url in line and "[route.called]" in line and "active" in line


def test_a_route_webhook_is_listed_as_such_and_other_webhooks_are_not_offered_its_type(
    admin_client, receiver
):
    route, _ = route_webhook(receiver.url, route_event())
    listing = admin_client.get(reverse("admin:hooks_webhook_changelist")).content.decode()
    assert '<td class="field-kind">Route (APIO)</td>' in listing
    add = admin_client.get(reverse("admin:hooks_webhook_add")).content.decode()
    assert 'value="route.called"' not in add  # a route webhook is made on its own page
    own = admin_client.get(reverse("admin:hooks_webhook_change", args=[route.pk]))
    assert 'value="route.called"' in own.content.decode()  # its own page keeps it

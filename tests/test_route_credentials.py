"""Credentials never ride a route payload (issue 41 point 1): every body shape a client
may send to a real hub view that matches a route event, searched for the planted values
in the real receiver's bytes, the stored event and the attempt history (the rows, the
admin's delivery page, the management API's history); the masks are there instead."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
from django import forms
from django.core import serializers
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken
from hooks.models import Attempt, Delivery, Event, LargeValue
from hooks.worker.attempt import deliver_due
from namespaces.models import Namespace, Variable
from routes import capture, matching, scrub, writeonly
from routes.forms import RouteEventForm, RouteWebhookForm
from routes.models import RouteWebhook

pytestmark = pytest.mark.django_db(transaction=True)  # route events are written after commit
MASK = "********"
PASSWORD, CLIENT_SECRET, NESTED = "hunter2-planted", "cs-planted-9f3a", "nested-planted-77"
HOOK_SECRET = "whsec_" + "QUJD" * 8  # the hub's secret shape, under an innocent name
API_TOKEN = "whk_plantedTokenValue0123456789"


@pytest.fixture(autouse=True)
def fresh_matcher():
    matching.matcher.invalidate()


@pytest.fixture
def token(ann):
    return ApiToken.issue(ann, "scrub")[1]


def listen(receiver, method: str, pattern: str) -> RouteWebhook:
    event = RouteEventForm({"label": "call", "method": method, "pattern": pattern})
    assert event.is_valid(), event.errors
    data = {"active": "on", "name": "apio", "url": receiver.url, "secret_action": "remove",
            "events": [event.save().pk]}  # fmt: skip
    form = RouteWebhookForm(data)
    assert form.is_valid(), form.errors
    return form.save()


def everything_stored(route: RouteWebhook, admin_client) -> str:
    """Every place a route payload lands: the stored route events (and values stored
    apart), the attempts, the admin's delivery pages and the management API's history."""
    events = Event.objects.filter(type="route.called")
    rows = [*events, *LargeValue.objects.filter(uses__event__in=events),
            *Attempt.objects.filter(delivery__webhook=route.webhook)]  # fmt: skip
    texts = [serializers.serialize("json", rows)]
    for delivery in Delivery.objects.filter(webhook=route.webhook):
        url = reverse("admin:hooks_delivery_change", args=[delivery.pk])
        texts.append(admin_client.get(url).content.decode())
    staff = ApiToken.issue(admin_client.user, "history")[1]
    history = Client().get(f"/api/v1/route-webhooks/{route.pk}/history",
                           HTTP_AUTHORIZATION=f"Bearer {staff}")  # fmt: skip
    assert history.status_code == 200
    return "\n".join([*texts, history.content.decode()])


@pytest.fixture
def admin_client(admin_client, admin_user):
    admin_client.user = admin_user
    return admin_client


def sent_calls(receiver) -> list[dict]:
    assert deliver_due() >= 1
    return [json.loads(r.body) for r in receiver.requests]


def assert_nowhere(planted: list[str], receiver, route, admin_client) -> str:
    sent = b"".join(r.body for r in receiver.requests).decode()
    stored = everything_stored(route, admin_client)
    for value in planted:
        assert value not in sent, f"{value} reached the receiver"
        assert value not in stored, f"{value} is in the stored history"
    return sent


JOB = {"input": {"prompt": "hi", "password": PASSWORD, "client_secret": CLIENT_SECRET,
                 "deep": {"list": [{"token": NESTED}]}, "hook": HOOK_SECRET}}  # fmt: skip


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream"])
def test_a_json_body_without_a_json_type_is_scrubbed(
    client, token, receiver, admin_client, content_type
):
    route = listen(receiver, "POST", r"^/v2/echo/run$")
    response = client.post("/v2/echo/run", data=json.dumps(JOB), content_type=content_type,
                           HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert response.status_code == 200, response.content
    [call] = sent_calls(receiver)
    body = call["request"]["body"]
    assert body["input"]["password"] == MASK and body["input"]["client_secret"] == MASK
    assert body["input"]["deep"] == {"list": [{"token": MASK}]}
    assert body["input"]["hook"] == MASK and body["input"]["prompt"] == "hi"
    assert_nowhere([PASSWORD, CLIENT_SECRET, NESTED, HOOK_SECRET], receiver, route, admin_client)


def test_a_json_body_sent_as_a_form_is_scrubbed(client, token, receiver, admin_client):
    route = listen(receiver, "POST", r"^/(v2/echo/run|admin/routes/routewebhook/add/)$")
    job = {"input": {"prompt": "hi", "api_token": API_TOKEN, "password": PASSWORD}}
    as_curl_sends_it = client.post("/v2/echo/run", data=json.dumps(job),  # curl -d '{…}'
                                   content_type="application/x-www-form-urlencoded",
                                   HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert as_curl_sends_it.status_code == 200, as_curl_sends_it.content
    url_encoded = admin_client.post(reverse("admin:routes_routewebhook_add"),  # the one key
                                    data=quote(json.dumps(job)),
                                    content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert url_encoded.status_code == 200  # the form's errors: a 2xx all the same
    calls = sent_calls(receiver)
    assert len(calls) == 2
    for call in calls:
        assert call["request"]["body"] == {"input": {"prompt": "hi", "api_token": MASK,
                                                     "password": MASK}}  # fmt: skip
    assert_nowhere([API_TOKEN, PASSWORD], receiver, route, admin_client)


def test_query_values_are_masked_by_shape_as_well_as_by_name(client, token, receiver, admin_client):
    route = listen(receiver, "POST", r"^/v2/echo/run$")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlcGxhbnRlZA"
    query = f"?key={API_TOKEN}&sig={HOOK_SECRET}&note={jwt}&client_secret={CLIENT_SECRET}"
    query += f"&{HOOK_SECRET}=1&tag=t"  # a secret as a parameter's name
    response = client.post(f"/v2/echo/run{query}", data=json.dumps({"input": {}}),
                           content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert response.status_code == 200, response.content
    [call] = sent_calls(receiver)
    assert call["request"]["url"] == (
        f"/v2/echo/run?key={MASK}&sig={MASK}&note={MASK}&client_secret={MASK}&{MASK}=1&tag=t"
    )
    assert_nowhere([API_TOKEN, HOOK_SECRET, jwt, CLIENT_SECRET], receiver, route, admin_client)


def browser_post(client, url: str, data: dict, multipart: bool):
    """A form as a browser posts it: url-encoded (or multipart, as an upload form)."""
    if multipart:
        return client.post(url, data)
    return client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("multipart", [False, True], ids=["urlencoded", "multipart"])
def test_write_only_fields_of_an_admin_form_that_fails_validation_are_masked(
    receiver, admin_client, multipart
):
    route = listen(receiver, "POST", r"^/admin/(routes/routewebhook|hooks/webhook)/add/$")
    header_value, lines_value, password = "hv-planted-1", "hl-planted-2", "bp-planted-3"
    refused = browser_post(admin_client, reverse("admin:routes_routewebhook_add"), {
        "name": "x", "url": "not a url", "header_name": "X-Custom", "header_value": header_value,
        "basic_auth_username": "u", "basic_auth_password": password, "secret_action": "remove",
    }, multipart)  # fmt: skip
    assert refused.status_code == 200 and "errornote" in refused.content.decode()
    refused = browser_post(admin_client, reverse("admin:hooks_webhook_add"), {
        "name": "x", "url": "not a url", "scope": "server",
        "headers_text": f"X-Custom: {lines_value}",
    }, multipart)  # fmt: skip
    assert refused.status_code == 200
    calls = sent_calls(receiver)
    assert len(calls) == 2
    bodies = {c["request"]["url"]: c["request"]["body"] for c in calls}
    route_form = bodies[reverse("admin:routes_routewebhook_add")]
    assert route_form["header_value"] == MASK and route_form["basic_auth_password"] == MASK
    assert route_form["header_name"] == "X-Custom"  # a name is no credential
    assert bodies[reverse("admin:hooks_webhook_add")]["headers_text"] == MASK
    assert_nowhere([header_value, lines_value, password], receiver, route, admin_client)


def test_a_new_forms_password_field_counts_without_being_listed():
    class DeployKeyForm(forms.Form):  # defined here: no list names it
        deploy_key = forms.CharField(widget=forms.PasswordInput)
        note = forms.CharField()

    names = writeonly.field_names()
    assert "deploy_key" in names and "note" not in names
    assert writeonly.is_write_only("settings-deploy_key", names)  # a prefixed form's field


def test_html_pages_stay_out_unless_the_operator_opts_in(
    client, ann, token, receiver, admin_client, settings
):
    route = listen(receiver, "*", r"^/namespaces/acme/")
    client.force_login(ann)
    created = client.post("/namespaces/new/", {"name": "acme", "visibility": "private"})
    assert created.status_code == 302
    namespace = Namespace.objects.get(name="acme")
    job = client.post("/v2/echo/run", data=json.dumps({**JOB, "namespace": namespace.path}),
                      content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert job.status_code == 200, job.content
    variable_value = "var-planted-5"
    variables = f"/namespaces/{namespace.path}/variables/"
    added = client.post(variables, {"key": "A", "value": variable_value})
    assert added.status_code == 302
    variable = Variable.objects.get(key="A")
    pages = [f"/namespaces/{namespace.path}/jobs/{job.json()['id']}/",
             f"{variables}{variable.pk}/"]  # fmt: skip
    for page in pages:
        shown = client.get(page)
        assert shown.status_code == 200 and "no-store" not in shown.get("Cache-Control", "")
    calls = sent_calls(receiver)
    responses = {c["request"]["url"]: c["response"]["body"] for c in calls}
    for page in pages:
        assert responses[page] == "[withheld: an HTML page (ROUTE_HTML_BODIES is off)]"
    assert_nowhere([PASSWORD, variable_value], receiver, route, admin_client)

    settings.ROUTE_HTML_BODIES = True  # the operator opts in: the page itself, scrubbed
    client.get(pages[0])
    deliver_due()
    opted = json.loads(receiver.requests[-1].body)["response"]["body"]
    assert "<html" in opted.lower() and HOOK_SECRET not in opted and PASSWORD not in opted
    assert "&quot;password&quot;: &quot;********&quot;" in opted  # the input, as shown


def test_a_body_cut_at_the_limit_is_scrubbed_before_it_is_cut(
    client, token, receiver, admin_client, settings
):
    settings.ROUTE_BODY_LIMIT = 200
    route = listen(receiver, "POST", r"^/v2/echo/run$")
    job = {"input": {"password": PASSWORD, "text": "z" * 5000, "token": NESTED}}
    response = client.post("/v2/echo/run", data=json.dumps(job), content_type="text/plain",
                           HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert response.status_code == 200, response.content
    [call] = sent_calls(receiver)
    body = call["request"]["body"]
    assert body.startswith('{"input": {"password": "********", "text": "zzz')
    assert body.endswith("more bytes]") and len(body) < 300
    assert_nowhere([PASSWORD, NESTED], receiver, route, admin_client)


def test_a_body_too_large_to_check_is_left_out(client, token, receiver, admin_client):
    route = listen(receiver, "POST", r"^/v2/echo/run$")
    job = {"input": {"password": PASSWORD, "image": "QUJD" * (1024 * 1024 // 4)}}
    response = client.post("/v2/echo/run", data=json.dumps(job), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert response.status_code == 200, response.content[:300]
    [call] = sent_calls(receiver)
    size = len(json.dumps(job))
    assert (
        call["request"]["body"]
        == f"[withheld: a body of {size} bytes, larger than the 1048576 checked]"
    )
    assert_nowhere([PASSWORD], receiver, route, admin_client)


def test_a_capture_that_fails_keeps_the_calls_answer(client, token, receiver, monkeypatch, caplog):
    listen(receiver, "POST", r"^/v2/echo/run$")

    def broken(request, raw):
        raise RecursionError("deep")

    monkeypatch.setattr(capture, "request_part", broken)
    response = client.post("/v2/echo/run", data=json.dumps({"input": {}}),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert response.status_code == 200 and response.json()["status"] == "IN_QUEUE"
    assert "Route event 'call' not recorded: RecursionError" in caplog.text
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    "text, planted",
    [("password=hunter2&user=ann", "hunter2"), ('{"token": "tk-1", "cut', "tk-1"),
     ("Authorization: Bearer abcdefgh12345", "abcdefgh12345"),
     ("https://ann:pw-in-url@example.com/x", "pw-in-url"),
     ("-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----", "MIIEv")],
)  # fmt: skip
def test_plain_text_loses_named_pairs_and_secret_shapes(text, planted):
    assert planted not in scrub.text(text) and MASK in scrub.text(text)


def test_a_switch_named_like_a_credential_keeps_its_value_and_the_rest_is_masked():
    shown = scrub.scrubbed({"github_signature": True, "password": None, "pin_token": 1234,
                            "secret": {"value": "x"}, "list": [{"auth": "y"}]})  # fmt: skip
    assert shown == {"github_signature": True, "password": None, "pin_token": MASK,
                     "secret": MASK, "list": [{"auth": MASK}]}  # fmt: skip

"""URLs users supply (their notification webhook, a job's callback URL) follow
WEBHOOK_USER_ALLOWED_NETWORKS, never the operator's WEBHOOK_ALLOWED_NETWORKS; unsafe
targets are refused when given, not retried at send time."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse

import hooks
from accounts import notification
from accounts.models import ApiToken
from hooks.models import Delivery, Event, Scope, Webhook
from hooks.tools.forms import WebhookForm
from hooks.worker.attempt import deliver_due
from tests.conftest import LOOPBACK, TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def operator_only(settings):
    """The local set-up the docs describe (README, docs/integrating.md): the operator
    exempts loopback, users get nothing."""
    settings.WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    settings.WEBHOOK_USER_ALLOWED_NETWORKS = []


@pytest.fixture
def ann(client):
    user = User.objects.create_user("ann@example.com", "ann@example.com", "pw", name="Ann")
    client.force_login(user)
    return user


def test_a_users_notification_url_does_not_ride_on_the_operators_exemption(
    client, ann, receiver, operator_only
):
    response = client.post(reverse("accounts:save_webhook"), {"url": receiver.url})
    assert response.status_code == 400 and "not allowed" in response.content.decode()
    assert notification.webhook_of(ann) is None


def test_a_user_webhook_saved_earlier_is_refused_at_send_time(ann, receiver, operator_only):
    """Its test ping is refused by the guard and shows no answer of the internal service."""
    hook = make_webhook(receiver.url, scope=Scope.USER, owner=ann, event_types=["*"])
    result = hooks.send_test(hook)
    assert not result.ok and "SSRF guard" in result.attempt.error
    assert receiver.requests == []


def test_a_server_webhook_still_uses_the_operators_exemption(receiver, operator_only):
    make_webhook(receiver.url)
    hooks.emit(TEST_EVENT, {"n": 1})
    deliver_due()
    assert len(receiver.requests) == 1


def test_a_jobs_callback_url_does_not_ride_on_the_operators_exemption(
    client, ann, receiver, operator_only
):
    _, token = ApiToken.issue(ann, "tests")
    response = client.post(
        "/v2/echo/run",
        data=json.dumps({"input": {}, "webhook": receiver.url}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 400 and response.json()["field"] == "webhook"
    assert "not allowed" in response.json()["error"]


@pytest.mark.parametrize("scope, accepted", [(Scope.SERVER, True), (Scope.USER, False)])
def test_the_admin_form_applies_the_rules_of_the_webhooks_scope(
    receiver, operator_only, scope, accepted
):
    owner = User.objects.create_user("o", "o@example.com", "pw")
    form = WebhookForm(
        {"name": "x", "url": receiver.url, "scope": scope, "owner": owner.pk, "format": "auto",
         "event_types": [TEST_EVENT]}
    )  # fmt: skip
    assert form.is_valid() == accepted, form.errors
    if not accepted:
        assert "not allowed" in str(form.errors["url"])


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:9/", "http://[::1]/"]
)
def test_emit_refuses_an_unsafe_target_url_and_writes_nothing(settings, url):
    settings.WEBHOOK_ALLOWED_NETWORKS = LOOPBACK  # the operator's exemption does not apply
    settings.WEBHOOK_USER_ALLOWED_NETWORKS = []
    with pytest.raises(hooks.UnsafeURL, match="not allowed"):
        hooks.emit(TEST_EVENT, {"n": 1}, target_url=url)
    assert not Event.objects.exists() and not Delivery.objects.exists()


@pytest.mark.parametrize(
    "url, message",
    [("file:///etc/passwd", "Only http and https"), ("http://169.254.169.254/", "link-local")],
)
def test_the_system_check_refuses_an_unsafe_webhook_url(monkeypatch, settings, url, message):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    monkeypatch.setenv("WEBHOOK_URL", url)
    with pytest.raises(SystemCheckError, match=f"WEBHOOK_URL: .*{message}"):
        call_command("check")


def test_by_default_neither_exemption_exists():
    from hooks.conf import SETTING_DEFAULTS

    assert (
        SETTING_DEFAULTS["WEBHOOK_ALLOWED_NETWORKS"]
        == SETTING_DEFAULTS["WEBHOOK_USER_ALLOWED_NETWORKS"]
        == ()
    )
    assert not Webhook.objects.exists()

"""A just-made secret or token is shown once, on its own page: until then it waits in
the session encrypted, never in a cookie (the messages cookie included), and after the
page that showed it, no cookie or session row holds it; another page never shows it."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse

from accounts import notification
from accounts.models import ApiToken
from hooks.models import Webhook
from routes.models import RouteEvent
from tests.test_admin import form
from tests.test_namespaces import add_webhook, create_namespace, logged_in, person

pytestmark = pytest.mark.django_db(transaction=True)
SETTINGS = reverse("accounts:settings")


@pytest.fixture
def owner():
    return person("olga")


def anywhere_at_rest(client, secret: str) -> list[str]:
    """Where the secret lies readable outside the page: a cookie's value (the messages
    cookie is signed, not encrypted) or a session row, raw or decoded."""
    found = [f"cookie {name}" for name, morsel in client.cookies.items() if secret in morsel.value]
    for row in Session.objects.all():
        if secret in row.session_data or secret in repr(row.get_decoded()):
            found.append(f"session {row.session_key}")
    return found


def test_a_namespace_webhooks_secret_waits_encrypted_for_its_own_page(owner, receiver):
    client = logged_in(owner)
    namespace = create_namespace(client)
    hook = add_webhook(client, namespace, receiver.url, secret_action="generate")
    assert hook.secret and anywhere_at_rest(client, hook.secret) == []
    assert hook.secret not in client.get(SETTINGS).content.decode()  # not its page
    page = client.get(f"/namespaces/{namespace.path}/webhooks/{hook.pk}/").content.decode()
    assert hook.secret in page
    assert anywhere_at_rest(client, hook.secret) == []
    again = client.get(f"/namespaces/{namespace.path}/webhooks/{hook.pk}/").content.decode()
    assert hook.secret not in again


def test_a_notification_webhooks_secret_never_shows_on_a_namespace_page(owner, receiver):
    client = logged_in(owner)
    namespace = create_namespace(client)
    other = add_webhook(client, namespace, receiver.url + "/ns")
    client.get(f"/namespaces/{namespace.path}/webhooks/{other.pk}/")
    client.post(
        reverse("accounts:save_webhook"), {"url": receiver.url, "secret_action": "generate"}
    )
    hook = notification.webhook_of(owner)
    assert hook.secret and anywhere_at_rest(client, hook.secret) == []
    namespace_page = client.get(f"/namespaces/{namespace.path}/webhooks/{other.pk}/")
    assert hook.secret not in namespace_page.content.decode()
    assert hook.secret in client.get(SETTINGS).content.decode()
    assert anywhere_at_rest(client, hook.secret) == []
    assert hook.secret not in client.get(SETTINGS).content.decode()


def test_a_new_token_waits_encrypted_and_is_shown_once(owner, monkeypatch):
    issued = []
    issue = ApiToken.issue

    def remembered(user, name):
        token, raw = issue(user, name)
        issued.append(raw)
        return token, raw

    monkeypatch.setattr(ApiToken, "issue", remembered)
    client = logged_in(owner)
    response = client.post(reverse("accounts:create_token"), {"name": "ci"})
    assert response.status_code == 302 and len(issued) == 1
    assert anywhere_at_rest(client, issued[0]) == []  # waiting for the page
    assert client.get(SETTINGS).context["new_token"] == issued[0]
    assert anywhere_at_rest(client, issued[0]) == []
    assert client.get(SETTINGS).context["new_token"] is None


def test_the_admins_route_webhook_secret_rides_no_cookie(admin_client, receiver):
    event = RouteEvent.objects.create(label="runs", method="POST", pattern="^/v2/")
    data = {"active": "on", "name": "apio", "url": receiver.url, "secret_action": "generate",
            "events": [event.pk]}  # fmt: skip
    response = admin_client.post(reverse("admin:routes_routewebhook_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    hook = Webhook.objects.get(url=receiver.url)
    assert hook.secret and "messages" not in response.cookies
    assert anywhere_at_rest(admin_client, hook.secret) == []
    page = admin_client.get(reverse("admin:routes_routewebhook_change", args=[hook.pk]))
    assert hook.secret in page.content.decode()
    assert anywhere_at_rest(admin_client, hook.secret) == []


def test_the_admins_server_webhook_secret_rides_no_cookie(admin_client, receiver):
    data = form(url=receiver.url, secret_action="generate")
    response = admin_client.post(reverse("admin:hooks_webhook_add"), data)
    hook = Webhook.objects.filter(url=receiver.url).first()
    assert hook is not None, response.content.decode()[:3000]
    assert hook.secret and "messages" not in response.cookies
    assert anywhere_at_rest(admin_client, hook.secret) == []
    page = admin_client.get(response["Location"]).content.decode()
    assert hook.secret in page
    assert anywhere_at_rest(admin_client, hook.secret) == []

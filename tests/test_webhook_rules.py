"""One webhook, one set of rules: the same changes made through each of the five places
that create and change webhooks (the admin, a namespace's page, the route webhook
admin, the account settings page, the management API) store the same result and show
a generated secret exactly once, at the moment it is made."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Verifier

from accounts import notification
from accounts.models import ApiToken
from hooks.models import Webhook
from hooks.worker.attempt import deliver_due
from namespaces.models import Namespace
from routes.models import RouteEvent, RouteWebhook
from tests.conftest import TEST_EVENT

pytestmark = pytest.mark.django_db

DJINN_SECRET = "my-djinn-secret-0123"


def person(name: str, **extra):
    return get_user_model().objects.create_user(name, f"{name}@example.com", "pw", **extra)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


class EntryPoint:
    """One place where a webhook is made and changed. `submit` sends a form or body with
    the given URL, secret choice (None: not sent, as an unchanged re-submit) and whether
    to follow redirects (a box ticked or not; the API's true or false), and
    returns what the person reads next; `look` is the webhook's page read later, which
    says until when a replaced secret still signs (REPLACED)."""

    REPLACED = "the replaced one signs beside it until"

    def webhook(self) -> Webhook:
        raise NotImplementedError

    def submit(self, url: str, action: str | None, pasted: str = "", follow: bool = False) -> str:
        raise NotImplementedError

    def look(self) -> str:
        raise NotImplementedError


class Admin(EntryPoint):
    def __init__(self):
        self.client = logged_in(person("root", is_staff=True, is_superuser=True))
        self.pk = None

    def webhook(self) -> Webhook:
        return Webhook.objects.get(pk=self.pk)

    def submit(self, url, action, pasted="", follow=False):
        data = {"name": "ci", "url": url, "active": "on", "scope": "server",
                "event_types": [TEST_EVENT], "format": "auto", "verify_tls": "on",
                "secret_action": action, "pasted_secret": pasted, "follow_redirects": ticked(follow)}  # fmt: skip
        page = _post(self.client, _admin_url("hooks_webhook", self.pk), data)
        self.pk = self.pk or Webhook.objects.get().pk
        return page

    def look(self):
        return self.client.get(
            reverse("admin:hooks_webhook_change", args=[self.pk])
        ).content.decode()


class NamespacePage(EntryPoint):
    def __init__(self):
        owner = person("olga")
        Namespace.objects.create(name="acme", path="acme", owner=owner)
        self.client = logged_in(owner)
        self.pk = None

    def webhook(self):
        return Webhook.objects.get(pk=self.pk)

    def submit(self, url, action, pasted="", follow=False):
        data = {"url": url, "name": "ci", "all_events": "on", "active": "on",
                "verify_tls": "on", "secret_action": action, "pasted_secret": pasted,
                "follow_redirects": ticked(follow)}  # fmt: skip
        target = (
            f"/namespaces/acme/webhooks/{self.pk}/" if self.pk else "/namespaces/acme/webhooks/new/"
        )
        page = _post(self.client, target, data)
        self.pk = self.pk or Webhook.objects.get().pk
        return page

    def look(self):
        return self.client.get(f"/namespaces/acme/webhooks/{self.pk}/").content.decode()


class RouteAdmin(EntryPoint):
    def __init__(self):
        self.client = logged_in(person("root", is_staff=True, is_superuser=True))
        self.event = RouteEvent.objects.create(label="run", method="POST", pattern="^/v2/")
        self.pk = None

    def webhook(self):
        return RouteWebhook.objects.get(pk=self.pk).webhook

    def submit(self, url, action, pasted="", follow=False):
        data = {"active": "on", "name": "ci", "url": url, "events": [self.event.pk],
                "secret_action": action, "pasted_secret": pasted,
                "follow_redirects": ticked(follow)}  # fmt: skip
        page = _post(self.client, _admin_url("routes_routewebhook", self.pk), data)
        self.pk = self.pk or RouteWebhook.objects.get().pk
        return page

    def look(self):
        url = reverse("admin:routes_routewebhook_change", args=[self.pk])
        return self.client.get(url).content.decode()


class AccountSettings(EntryPoint):
    def __init__(self):
        self.user = person("ann")
        self.client = logged_in(self.user)

    def webhook(self):
        return notification.webhook_of(self.user)

    def submit(self, url, action, pasted="", follow=False):
        data = {"url": url, "shape": "auto", "secret_action": action, "pasted_secret": pasted,
                "follow_redirects": ticked(follow)}  # fmt: skip
        return _post(self.client, reverse("accounts:save_webhook"), data)

    def look(self):
        return self.client.get(reverse("accounts:settings")).content.decode()


class ManagementApi(EntryPoint):
    REPLACED = '"previous_secret_valid_until": "'

    def __init__(self):
        owner = person("olga")
        Namespace.objects.create(name="acme", path="acme", owner=owner)
        self.token = ApiToken.issue(owner, "rules")[1]
        self.client = Client()
        self.pk = None

    def webhook(self):
        return Webhook.objects.get(pk=self.pk)

    def _call(self, method: str, path: str, body=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(self.client, method)(f"/api/v1{path}", **kwargs)

    def submit(self, url, action, pasted="", follow=False):
        body = _sent({"url": url, "name": "ci", "secret_action": action, "secret": pasted or None,
                      "follow_redirects": follow})  # fmt: skip
        if self.pk:
            answer = self._call("patch", f"/webhooks/{self.pk}", body)
        else:
            answer = self._call("post", "/webhooks", {**body, "namespace": "acme"})
        assert answer.status_code in (200, 201), answer.content
        self.pk = answer.json()["id"]
        return answer.content.decode()

    def look(self):
        return self._call("get", f"/webhooks/{self.pk}").content.decode()


def ticked(on: bool) -> str | None:
    """A checkbox as a browser sends it: "on", or not at all."""
    return "on" if on else None


def _admin_url(model: str, pk: int | None) -> str:
    return reverse(f"admin:{model}_change", args=[pk]) if pk else reverse(f"admin:{model}_add")


def _post(client: Client, url: str, data: dict) -> str:
    """A form sent as a browser sends it; the page it leads to, which shows no error."""
    page = client.post(url, _sent(data), follow=True)
    assert page.status_code == 200 and b'class="errorlist' not in page.content, page.content
    return page.content.decode()


def _sent(data: dict) -> dict:
    """A form or body as sent: fields without a value are left out."""
    return {k: v for k, v in data.items() if v not in (None, "")}


ENTRY_POINTS = [Admin, NamespacePage, RouteAdmin, AccountSettings, ManagementApi]
# (what is done, URL, secret action, pasted secret, follow redirects)
CHANGES = [
    ("create, generating a secret", "https://one.example.com/hook", "generate", "", True),
    ("re-submit unchanged", "https://one.example.com/hook", None, "", True),
    ("change the URL only", "https://two.example.com/hook", "keep", "", True),
    ("paste a Djinn secret", "https://two.example.com/hook", "paste", DJINN_SECRET, True),
    ("paste the same again", "https://two.example.com/hook", "paste", DJINN_SECRET, True),
    ("generate a new one", "https://two.example.com/hook", "generate", "", True),
    ("remove it", "https://two.example.com/hook", "remove", "", True),
    ("stop following redirects", "https://two.example.com/hook", None, "", False),
    ("re-submit unchanged", "https://two.example.com/hook", None, "", False),
]


def _stored(webhook: Webhook, secrets: dict[str, str]) -> tuple:
    """The stored result in words that do not depend on the random secrets."""

    def named(value: str) -> str:
        return secrets.setdefault(value, f"secret {len(secrets) + 1}") if value else "none"

    expires = webhook.previous_secret_expires_at
    grace = None
    if expires is not None:
        grace = round((expires - timezone.now()) / timedelta(hours=1))
    return (webhook.url, named(webhook.secret), named(webhook.previous_secret), grace,
            [s == webhook.secret for s in webhook.signing_secrets()],
            webhook.follow_redirects)  # fmt: skip


def _walk(entry: EntryPoint) -> list[tuple]:
    """Each change's stored result and what was shown (a secret shown: which)."""
    secrets: dict[str, str] = {}
    rows = []
    for what, url, action, pasted, follow in CHANGES:
        shown = entry.submit(url, action, pasted, follow)
        webhook = entry.webhook()
        stored = _stored(webhook, secrets)
        seen = [secrets[s] for s in secrets if s and s in shown]
        page = entry.look()
        later = [secrets[s] for s in secrets if s and s in page]
        rows.append((what, stored, seen, later, entry.REPLACED in page))
    return rows


@pytest.fixture
def expected() -> list[tuple]:
    u1, u2 = "https://one.example.com/hook", "https://two.example.com/hook"
    s1, s2, s3 = "secret 1", "secret 2", "secret 3"  # generated, pasted, generated
    return [
        ("create, generating a secret", (u1, s1, "none", None, [True], True), [s1], [], False),
        ("re-submit unchanged", (u1, s1, "none", None, [True], True), [], [], False),
        ("change the URL only", (u2, s1, "none", None, [True], True), [], [], False),
        ("paste a Djinn secret", (u2, s2, s1, 24, [True, False], True), [], [], True),
        ("paste the same again", (u2, s2, s1, 24, [True, False], True), [], [], True),
        ("generate a new one", (u2, s3, s2, 24, [True, False], True), [s3], [], True),
        ("remove it", (u2, "none", "none", None, [], True), [], [], False),
        ("stop following redirects", (u2, "none", "none", None, [], False), [], [], False),
        ("re-submit unchanged", (u2, "none", "none", None, [], False), [], [], False),
    ]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda e: e.__name__)
def test_the_same_changes_store_the_same_and_show_a_secret_once(entry_point, expected):
    rows = _walk(entry_point())
    for row, want in zip(rows, expected, strict=True):
        assert row == want, row[0]


# --- existing secrets carry over ----------------------------------------------------
def djinn_receiver_accepts(secret: str, request) -> bool:
    """A Djinn CI receiver's own check: sha256= and the hex HMAC of the body, keyed with
    the secret string its owner typed."""
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get("X-Djinn-CI-Signature", ""), expected)


@pytest.mark.django_db(transaction=True)
def test_a_pasted_djinn_secret_verifies_at_a_djinn_receiver_and_by_standard_webhooks(receiver):
    page = NamespacePage()
    data = {"url": receiver.url, "all_events": "on", "active": "on", "verify_tls": "on",
            "djinn_headers": "on", "secret_action": "paste", "pasted_secret": DJINN_SECRET}  # fmt: skip
    made = page.client.post("/namespaces/acme/webhooks/new/", data, follow=True)
    assert DJINN_SECRET not in made.content.decode()  # typed by its owner: never shown back
    page.client.post("/namespaces/acme/variables/", {"key": "REGION", "value": "eu"})
    assert deliver_due() == 1
    [request] = receiver.requests
    assert request.headers["User-Agent"] == "Djinn-CI-Hook"
    assert djinn_receiver_accepts(DJINN_SECRET, request)
    assert not djinn_receiver_accepts(DJINN_SECRET + "x", request)
    # Standard Webhooks: keyed with the secret's own UTF-8 bytes (docs/security.md).
    assert Verifier(DJINN_SECRET.encode()).verify(request.body, request.headers)["action"]


def test_secrets_that_are_not_16_to_256_printable_characters_are_refused():
    page = NamespacePage()
    for bad, message in [("my-djinn-secret", "16 to 256 characters long (this one has 15)"),
                         ("x" * 257, "16 to 256 characters"),
                         ("line\nbreak-in-the-secret", "line breaks"),
                         ("whsec_c2hvcnQ=", "24 to 64 random bytes")]:  # fmt: skip
        data = {"url": "https://one.example.com/hook", "all_events": "on",
                "secret_action": "paste", "pasted_secret": bad}  # fmt: skip
        answer = page.client.post("/namespaces/acme/webhooks/new/", data)
        assert answer.status_code == 400 and message in answer.content.decode(), bad
    assert not Webhook.objects.exists()

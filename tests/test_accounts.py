"""Accounts: signup (and its webhook), settings page, tokens."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import ApiToken, hash_token
from hooks import slots
from hooks.models import Event, Webhook
from hooks.worker.attempt import deliver_due
from tests.conftest import verify

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()
SIGNUP = reverse("accounts:signup")
GOOD = {"name": "Tim", "email": "tim@example.com", "password": "a long and unusual passphrase"}


@pytest.fixture
def signup_webhook(receiver):
    return slots.save("signup", receiver.url)


def test_signup_page_sends_one_signed_new_user_request(client, receiver, signup_webhook):
    response = client.post(SIGNUP, GOOD)
    assert response.status_code == 302 and response["Location"] == reverse("accounts:settings")
    assert deliver_due() == 1
    user = User.objects.get(email="tim@example.com")
    [request] = receiver.requests
    assert verify(signup_webhook, request) == {
        "event": "new_user",
        "user": {"id": user.pk, "email": "tim@example.com", "name": "Tim"},
    }
    assert client.get(reverse("accounts:settings")).status_code == 200  # logged in


@pytest.mark.parametrize(
    "change, message",
    [
        ({"email": "not-an-email"}, "Enter a valid email address"),
        ({"password": "short"}, "too short"),
        ({"password": "password123"}, "too common"),
        ({"name": "   "}, "This field is required"),
    ],
)
def test_a_signup_that_fails_validation_sends_nothing(
    client, receiver, signup_webhook, change, message
):
    response = client.post(SIGNUP, {**GOOD, **change})
    assert response.status_code == 200 and message in response.content.decode()
    assert User.objects.count() == 0 and Event.objects.filter(type="user.signup").count() == 0
    assert deliver_due() == 0 and receiver.requests == []


def test_email_is_unique_whatever_its_case(client, signup_webhook):
    client.post(SIGNUP, GOOD)
    client.logout()
    response = client.post(SIGNUP, {**GOOD, "email": "TIM@example.com"})
    assert "already exists" in response.content.decode()
    assert User.objects.count() == 1


def test_every_way_of_creating_an_account_emits_signup_once(
    client, receiver, signup_webhook, admin_client
):
    User.objects.create_user("api-made", "api@example.com", "pw")
    call_command(
        "createsuperuser", "--noinput", "--username", "root", "--email", "root@example.com"
    )
    admin_client.post(
        reverse("admin:accounts_user_add"),
        {"username": "viaadmin", "email": "admin-made@example.com", "name": "Ada",
         "password1": "a long and unusual passphrase", "password2": "a long and unusual passphrase"},
    )  # fmt: skip
    emails = sorted(e.payload["user"]["email"] for e in Event.objects.filter(type="user.signup"))
    assert emails == sorted(
        ["api@example.com", "root@example.com", "admin-made@example.com", "admin@example.com"]
    )  # admin_client's own account counts too


def test_webhook_url_alone_works(client, receiver, monkeypatch):
    monkeypatch.setenv("WEBHOOK_URL", receiver.url)
    client.post(SIGNUP, GOOD)
    deliver_due()
    assert len(receiver.requests) == 1
    assert slots.effective("signup") == (receiver.url, "env")


def test_emit_writes_no_webhook_rows_in_the_callers_transaction(receiver, monkeypatch):
    """Env-fed slots are not synced by emit(): a write there would ride on the caller's
    transaction (and vanish with its rollback while the process believed it done)."""
    monkeypatch.setenv("WEBHOOK_URL", receiver.url)
    before = Webhook.objects.count()
    User.objects.create_user("z", "z@example.com", "pw")  # emits user.signup
    assert Webhook.objects.count() == before


def test_a_web_request_brings_env_fed_slots_in_line_before_its_view(client, receiver, monkeypatch):
    monkeypatch.setenv("WEBHOOK_URL", receiver.url)
    client.get("/")  # any page: the sync runs on request_started, outside any transaction
    assert slots.webhook("signup").url == receiver.url
    monkeypatch.delenv("WEBHOOK_URL")
    call_command("migrate", verbosity=0)  # and after every migrate
    assert slots.webhook("signup") is None


def test_a_url_saved_in_the_admin_wins_over_webhook_url(admin_client, receiver, monkeypatch):
    from hooks.tools.receiver import Receiver

    with Receiver() as env_receiver:
        monkeypatch.setenv("WEBHOOK_URL", env_receiver.url)
        page = admin_client.post(
            reverse("hooks_server_configuration"),
            {"signup-url": receiver.url, "signup-data": ""},
            follow=True,
        ).content.decode()
        assert "saved here" in page
        User.objects.create_user("x", "x@example.com", "pw")
        deliver_due()
        assert len(receiver.requests) == 1 and env_receiver.requests == []
        # Clearing the admin URL gives the slot back to the variable.
        page = admin_client.post(
            reverse("hooks_server_configuration"),
            {"signup-url": "", "signup-data": ""},
            follow=True,
        ).content.decode()
        assert "WEBHOOK_URL" in page and env_receiver.url in page
        User.objects.create_user("y", "y@example.com", "pw")
        deliver_due()
        assert len(env_receiver.requests) == 1


def test_server_configuration_refuses_bad_input(admin_client, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    url = reverse("hooks_server_configuration")
    page = admin_client.post(url, {"signup-url": "ftp://x", "signup-data": ""}).content.decode()
    assert "Only http and https" in page
    # a summary at the top names the hook to fix, before any of the hooks' fields
    summary = page.index('id="error-summary"')
    assert (
        summary < page.index('id="slot-signup"')
        and "Signup webhook" in page[summary : summary + 300]
    )
    assert 'class="vURLField wide-url"' in page  # wide enough for a real URL
    page = admin_client.post(
        url, {"signup-url": "http://10.0.0.1/", "signup-data": ""}
    ).content.decode()
    assert "not allowed" in page
    page = admin_client.post(
        url, {"signup-url": "https://example.com/", "signup-data": "{oops"}
    ).content.decode()
    assert "not valid JSON" in page
    assert not Webhook.objects.filter(slot="signup").exists()


def test_chat_formats_get_a_one_line_message(client, receiver):
    hook = slots.save("signup", receiver.url)
    Webhook.objects.filter(pk=hook.pk).update(format="slack")
    client.post(SIGNUP, GOOD)
    deliver_due()
    import json

    assert json.loads(receiver.requests[0].body) == {"text": "New user signed up: Tim"}


# --- settings page ---------------------------------------------------------------


@pytest.fixture
def tim(client):
    client.post(SIGNUP, GOOD)
    return User.objects.get(email="tim@example.com")


def test_profile_edit_and_validation(client, tim):
    User.objects.create_user("other", "taken@example.com", "pw")
    url = reverse("accounts:settings")
    page = client.post(url, {"name": "Timothy", "email": "TAKEN@example.com"}).content.decode()
    assert "Another account uses this email" in page
    tim.refresh_from_db()
    assert tim.name == "Tim"
    assert client.post(url, {"name": "Timothy", "email": "tim@example.com"}).status_code == 302
    tim.refresh_from_db()
    assert tim.name == "Timothy"


def test_tokens_are_shown_once_stored_hashed_and_revocable(client, tim):
    page = client.post(
        reverse("accounts:create_token"), {"name": "ci"}, follow=True
    ).content.decode()
    token = ApiToken.objects.get(user=tim)
    raw = page.split('<code id="new-token-value">')[1].split("</code>")[0]
    assert (
        raw.startswith("whk_")
        and token.digest == hash_token(raw)
        and raw not in str(token.__dict__)
    )
    assert ApiToken.objects.authenticate(raw) == token
    assert raw not in client.get(reverse("accounts:settings")).content.decode()
    page = client.post(reverse("accounts:create_token"), {"name": "ci"}).content.decode()
    assert "already have a token with this name" in page
    client.post(reverse("accounts:revoke_token", args=[token.pk]))
    assert ApiToken.objects.authenticate(raw) is None


def test_tokens_command(tim):
    out = io.StringIO()
    call_command("tokens", "create", "tim@example.com", "--name", "script", stdout=out)
    raw = out.getvalue().strip()
    assert ApiToken.objects.authenticate(raw).user == tim
    out = io.StringIO()
    call_command("tokens", "list", "tim@example.com", stdout=out)
    assert "script" in out.getvalue() and raw not in out.getvalue()
    call_command("tokens", "revoke", "tim@example.com", "--name", "script", stdout=io.StringIO())
    assert ApiToken.objects.authenticate(raw) is None
    with pytest.raises(CommandError, match="No account"):
        call_command("tokens", "create", "nobody@example.com", "--name", "x")


def test_login_with_email_and_logout(client, tim):
    client.logout()
    response = client.post(
        reverse("accounts:login"), {"username": "TIM@example.com", "password": GOOD["password"]}
    )
    assert response.status_code == 302
    client.logout()
    bad = client.post(
        reverse("accounts:login"), {"username": "tim@example.com", "password": "nope"}
    )
    assert "do not match" in bad.content.decode()


def test_pages_need_login(client):
    for name in ("settings", "create_token", "save_webhook", "test_webhook"):
        response = client.get(reverse(f"accounts:{name}"))
        assert response.status_code in (302, 405)
        if response.status_code == 302:
            assert reverse("accounts:login") in response["Location"]

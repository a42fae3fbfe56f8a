"""Every user's notification webhook (Open WebUI's user webhook)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

import hooks
from accounts import notification, presence
from accounts.events import notify_user
from accounts.models import ApiToken, Presence, SiteConfig
from hooks.models import Delivery, EventValue
from hooks.tools.receiver import Reply
from hooks.worker.attempt import deliver_due
from jobs.events import FINISHED as JOB_FINISHED
from jobs.events import finished_payload as job_finished_payload
from tests.conftest import make_webhook

pytestmark = pytest.mark.django_db
User = get_user_model()
SETTINGS = reverse("accounts:settings")


@pytest.fixture
def ann(client):
    user = User.objects.create_user("ann@example.com", "ann@example.com", "pw", name="Ann")
    client.force_login(user)
    return user


def away(user) -> None:
    """No page of theirs open."""
    Presence.objects.filter(user=user).delete()


def payload(output="A red fox in the snow.") -> dict:
    return job_finished_payload("j-1", "render", "COMPLETED", "/jobs/j-1", output=output)


def test_an_inactive_user_is_notified_and_only_their_webhook(ann, receiver):
    notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    make_webhook(receiver.url, name="server", event_types=[JOB_FINISHED])  # a server subscriber
    away(ann)
    assert notify_user(ann, JOB_FINISHED, payload())
    assert deliver_due() == 1
    body = json.loads(receiver.requests[0].body)
    assert body == {
        "event": "job_finished",
        "job": {
            "id": "j-1",
            "name": "render",
            "status": "COMPLETED",
            "url": "http://localhost:8000/jobs/j-1",
            "output": "A red fox in the snow.",
        },
    }


def test_a_user_with_a_page_open_is_not_notified(ann, receiver):
    notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    presence.beat(ann, "anns-page-1")
    assert not notify_user(ann, JOB_FINISHED, payload())
    assert Delivery.objects.count() == 0


def test_a_user_never_seen_counts_as_away(ann, receiver):
    notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    assert notify_user(ann, JOB_FINISHED, payload())


@pytest.mark.parametrize("how", ["env", "admin"])
def test_the_switch_turns_it_off(ann, receiver, settings, client, how):
    notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    away(ann)
    if how == "env":
        settings.ENABLE_USER_WEBHOOKS = False
    else:
        SiteConfig.objects.update_or_create(pk=1, defaults={"enable_user_webhooks": False})
    assert not notify_user(ann, JOB_FINISHED, payload())
    assert Delivery.objects.count() == 0
    page = client.get(SETTINGS).content.decode()
    assert "Notification webhook" not in page
    assert client.post(reverse("accounts:save_webhook"), {"url": receiver.url}).status_code == 404
    assert client.post(reverse("accounts:test_webhook")).status_code == 404


def test_admin_switch_overrides_the_env(ann, receiver, settings):
    settings.ENABLE_USER_WEBHOOKS = False
    SiteConfig.objects.update_or_create(pk=1, defaults={"enable_user_webhooks": True})
    notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    away(ann)
    assert notify_user(ann, JOB_FINISHED, payload())


def test_chat_format_message(ann, receiver):
    hook, _ = notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    hook.format = "discord"
    hook.save()
    away(ann)
    notify_user(ann, JOB_FINISHED, payload())
    deliver_due()
    assert json.loads(receiver.requests[0].body) == {
        "content": "render - http://localhost:8000/jobs/j-1\n\nA red fox in the snow."
    }


def test_settings_page_saves_signs_tests_and_lists(client, ann, receiver):
    receiver.respond = lambda request: Reply(200, body=b"thanks!")
    page = client.post(
        reverse("accounts:save_webhook"),
        {"url": receiver.url, "secret_action": "generate"},
        follow=True,
    )
    page = page.content.decode()
    hook = notification.webhook_of(ann)
    assert hook.url == receiver.url and hook.secret and hook.secret in page
    assert hook.secret not in client.get(SETTINGS).content.decode()  # shown once
    page = client.post(reverse("accounts:test_webhook"), follow=True).content.decode()
    assert 'id="test-result"' in page and "HTTP 200" in page and "thanks!" in page
    from standardwebhooks.webhooks import Webhook as Verifier

    Verifier(hook.secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert 'id="deliveries"' in page and "webhook.test" in page


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com", "Only http and https"),
        ("http://10.1.2.3/x", "not allowed"),
        ("http://", "no host"),
    ],
)
def test_bad_urls_are_refused_and_nothing_saved(client, ann, settings, url, message):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    response = client.post(reverse("accounts:save_webhook"), {"url": url})
    page = response.content.decode()
    assert response.status_code == 400 and message in page
    assert notification.webhook_of(ann) is None
    # a banner says so, in the webhook's own card, right above its fields
    card = page[page.index('id="notification-webhook"') :]
    assert card.index("Nothing was saved") < card.index('name="url"')


def test_redeliver_own_delivery(client, ann, receiver):
    notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    away(ann)
    notify_user(ann, JOB_FINISHED, payload())
    deliver_due()
    delivery = Delivery.objects.get()
    client.post(reverse("accounts:redeliver", args=[delivery.pk]))
    assert deliver_due() == 1
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(delivery.pk)] * 2


def test_another_users_webhook_and_tokens_are_unreachable(client, ann, receiver):
    bob = User.objects.create_user("bob@example.com", "bob@example.com", "pw", name="Bob")
    notification.save(bob, receiver.url, hooks.SecretChange("generate"))
    away(bob)
    notify_user(bob, JOB_FINISHED, payload())
    deliver_due()
    bobs_delivery = Delivery.objects.get()
    bobs_token, raw = ApiToken.issue(bob, "bob's")
    page = client.get(SETTINGS).content.decode()
    assert receiver.url not in page and "bob's" not in page and str(bobs_delivery.pk) not in page
    assert client.post(reverse("accounts:redeliver", args=[bobs_delivery.pk])).status_code == 404
    assert client.get(reverse("accounts:delivery", args=[bobs_delivery.pk])).status_code == 404
    assert client.post(reverse("accounts:revoke_token", args=[bobs_token.pk])).status_code == 404
    assert ApiToken.objects.filter(pk=bobs_token.pk).exists()
    # Ann saving her own webhook never touches Bob's.
    client.post(reverse("accounts:save_webhook"), {"url": ""})
    assert notification.webhook_of(bob).url == receiver.url
    # Nor can she reach them through the admin.
    assert client.get(reverse("admin:hooks_webhook_changelist")).status_code == 302


def test_the_settings_page_offers_open_webuis_code_shape(client, ann, receiver):
    client.post(reverse("accounts:save_webhook"), {"url": receiver.url, "shape": "open_webui"})
    assert 'value="open_webui" selected' in client.get(SETTINGS).content.decode()
    away(ann)
    notify_user(ann, JOB_FINISHED, payload())
    deliver_due()
    assert json.loads(receiver.requests[0].body) == {
        "action": "chat",
        "message": "A red fox in the snow.",
        "title": "render",
        "url": "http://localhost:8000/jobs/j-1",
    }
    client.post(reverse("accounts:save_webhook"), {"url": receiver.url, "shape": "auto"})
    assert notification.webhook_of(ann).format == "auto"


def test_an_unknown_payload_shape_is_refused(client, ann, receiver):
    response = client.post(reverse("accounts:save_webhook"), {"url": receiver.url, "shape": "xml"})
    assert (
        response.status_code == 400
        and "not one of the available choices" in response.content.decode()
    )
    assert notification.webhook_of(ann) is None


def test_a_user_opens_their_delivery_and_sees_request_and_response(client, ann, receiver):
    notification.save(ann, receiver.url, hooks.SecretChange("generate"))
    away(ann)
    notify_user(ann, JOB_FINISHED, payload())
    deliver_due()
    delivery = Delivery.objects.get()
    settings_page = client.get(SETTINGS).content.decode()
    assert reverse("accounts:delivery", args=[delivery.pk]) in settings_page
    redeliver = settings_page[
        settings_page.index(reverse("accounts:redeliver", args=[delivery.pk])) :
    ]
    assert 'class="secondary small"' in redeliver.split("</form>")[0]  # not red like Revoke
    page = client.get(reverse("accounts:delivery", args=[delivery.pk])).content.decode()
    assert (
        "HTTP 200" in page and f"webhook-id: {delivery.pk}" in page and "webhook-signature" in page
    )
    assert "&quot;event&quot;: &quot;job_finished&quot;" in page
    assert notification.webhook_of(ann).secret not in page


def test_account_settings_is_one_page_saying_where_the_value_comes_from(admin_client, settings):
    from accounts.events import user_webhooks_enabled
    from accounts.models import SiteConfig

    settings.ENABLE_USER_WEBHOOKS = True
    listing = admin_client.get("/admin/accounts/siteconfig/")
    assert listing.status_code == 302  # no list of one row: straight to its page
    page = admin_client.get(listing["Location"]).content.decode()
    assert "As the environment says (ENABLE_USER_WEBHOOKS: on now)" in page
    assert (
        "In effect now: on" in page and "Unknown" not in page and "Add account settings" not in page
    )
    assert "0 account settings" not in admin_client.get("/admin/").content.decode()
    saved = admin_client.post(listing["Location"], {"enable_user_webhooks": "off"}, follow=True)
    assert (
        "Account settings saved." in saved.content.decode()
        and "In effect now: off" in saved.content.decode()
    )
    assert SiteConfig.load().enable_user_webhooks is False and not user_webhooks_enabled()
    admin_client.post(listing["Location"], {"enable_user_webhooks": ""})
    assert SiteConfig.load().enable_user_webhooks is None and user_webhooks_enabled()
    assert SiteConfig.objects.count() == 1


LONG = "".join(f"line {n}: the fox ran on through the snow.\n" for n in range(1500))  # 61 KB


@pytest.mark.parametrize(
    "shape, key, limit",
    [("discord", "content", 2000), ("slack", "text", 40_000), ("google_chat", "text", 4096)],
)
def test_a_chat_platform_gets_title_url_and_the_output_cut_to_its_limit(
    ann, receiver, settings, shape, key, limit
):
    """Open WebUI's "{title} - {url}\\n\\n{content}": the output itself, even one kept
    apart from the event's row (which keeps a preview), cut to what the platform takes."""
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 8 * 1024  # the output goes apart from the row
    hook, _ = notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    hook.format = shape
    hook.save()
    assert notify_user(ann, JOB_FINISHED, payload(LONG))
    assert EventValue.objects.filter(event__type=JOB_FINISHED).exists()  # kept apart
    assert deliver_due() == 1
    text = json.loads(receiver.requests[0].body)[key]
    whole = "render - http://localhost:8000/jobs/j-1\n\n" + LONG
    assert len(text) == limit and text == whole[: limit - 1] + "…"


def test_open_webuis_code_shape_carries_the_whole_content(ann, receiver, settings):
    """Open WebUI posts its content whole to a receiver that is no chat platform: the
    `message` is the output, not a preview, however large (within the job's limit)."""
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 8 * 1024
    notification.save(ann, receiver.url, hooks.SecretChange("remove"), shape="open_webui")
    notify_user(ann, JOB_FINISHED, payload(LONG))
    deliver_due()
    assert json.loads(receiver.requests[0].body) == {
        "action": "chat",
        "message": LONG,
        "title": "render",
        "url": "http://localhost:8000/jobs/j-1",
    }


@pytest.mark.parametrize(
    "status, output, error, content",
    [
        ("COMPLETED", {"images": 1, "seed": 7}, "", '{"images": 1, "seed": 7}'),
        ("COMPLETED", None, "", "COMPLETED"),
        ("FAILED", None, "ZeroDivisionError: division by zero",
         "FAILED: ZeroDivisionError: division by zero"),
        ("CANCELLED", None, "", "CANCELLED"),
    ],
)  # fmt: skip
def test_the_content_is_the_output_as_text_or_what_went_wrong(
    ann, receiver, status, output, error, content
):
    notification.save(ann, receiver.url, hooks.SecretChange("remove"), shape="open_webui")
    notify_user(
        ann,
        JOB_FINISHED,
        job_finished_payload("j-1", "render", status, "/jobs/j-1", output=output, error=error),
    )
    deliver_due()
    message = json.loads(receiver.requests[0].body)["message"]
    if output is None:
        assert message == content
    else:  # JSON text; PostgreSQL's jsonb keeps no key order
        assert json.loads(message) == json.loads(content)


@pytest.mark.parametrize("shape", ["teams", "teams_workflow"])
def test_a_teams_card_carries_the_result_within_teams_28_kb(ann, receiver, shape):
    hook, _ = notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    hook.format = shape
    hook.save()
    notify_user(ann, JOB_FINISHED, payload(LONG))
    deliver_due()
    body = receiver.requests[0].body
    assert len(body) <= 28 * 1024
    assert "render - http://localhost:8000/jobs/j-1\\n\\nline 0: the fox" in body.decode()

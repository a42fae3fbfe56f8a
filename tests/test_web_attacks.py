"""What held when the hub was attacked through its pages, kept as tests: cross-site
request forgery is refused, and what receivers and users wrote is shown escaped."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

import hooks
from accounts import notification
from hooks import emit
from hooks.models import Delivery, Webhook
from hooks.tools.receiver import Reply
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db
User = get_user_model()
SCRIPT = "<script>alert(1)</script>"
IMAGE = '<img src=x onerror="alert(2)">'


def test_a_forged_cross_site_post_is_refused_and_changes_nothing(receiver):
    ann = User.objects.create_user("ann@example.com", "ann@example.com", "pw")
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    hook = make_webhook(receiver.url)
    secret = hook.secret
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(ann)
    response = browser.post(reverse("accounts:save_webhook"), {"url": receiver.url})
    assert response.status_code == 403 and notification.webhook_of(ann) is None
    browser.force_login(root)
    response = browser.post(reverse("admin:hooks_webhook_rotate", args=[hook.pk]))
    assert response.status_code == 403
    hook.refresh_from_db()
    assert hook.secret == secret


def test_what_receivers_and_users_wrote_is_shown_escaped(admin_client, client, receiver):
    receiver.respond = lambda request: Reply(500, headers={"X-Evil": SCRIPT}, body=IMAGE.encode())
    ann = User.objects.create_user("ann@example.com", "ann@example.com", "pw", name=SCRIPT)
    hook, _ = notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    Webhook.objects.filter(pk=hook.pk).update(name=SCRIPT)
    make_webhook(receiver.url, name=SCRIPT)
    emit(TEST_EVENT, {"text": SCRIPT})
    emit(TEST_EVENT, {"text": IMAGE}, user=ann)
    deliver_due()
    delivery = Delivery.objects.filter(webhook__scope="server").first()
    pages = [
        admin_client.get(reverse("admin:hooks_delivery_change", args=[delivery.pk])),
        admin_client.get(reverse("admin:hooks_delivery_changelist")),
        admin_client.get(reverse("admin:hooks_webhook_changelist")),
        admin_client.get(reverse("hooks_dashboard")),
    ]
    client.force_login(ann)
    pages.append(client.get(reverse("accounts:settings")))
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert SCRIPT not in html and IMAGE not in html
    assert "&lt;img src=x" in pages[0].content.decode()  # shown, as text
    assert "&lt;script&gt;alert(1)" in pages[2].content.decode()

"""Staff without permissions: every admin URL, looked at and posted to, answers with a
refusal and changes nothing; a view permission lets one look but not act."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from hooks import emit
from hooks.models import Attempt, Delivery, Event, Webhook
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db
User = get_user_model()
# Pages any staff member may open: login, their own password, the (empty) index,
# translations.
OPEN_TO_STAFF = {"/admin/", "/admin/jsi18n/", "/admin/login/", "/admin/password_change/",
                 "/admin/password_change/done/"}  # fmt: skip
CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _concrete(route: str, values: dict[str, str]) -> str:
    return CONVERTER.sub(lambda m: values.get(m.group(2), "1"), route)


def admin_paths(objects: dict) -> list[str]:
    """Every URL of the admin site and of its models, with real ids filled in."""
    paths = ["/admin/", "/admin/dashboard/", "/admin/server-configuration/"]
    for pattern in admin.site.get_urls():
        route = str(pattern.pattern).lstrip("^").rstrip("$")
        if "logout" in route or "<app_label>" in route or not hasattr(pattern, "callback"):
            continue
        paths.append("/admin/" + _concrete(route, {}))
    for model, model_admin in admin.site._registry.items():
        obj = objects.get(model)
        prefix = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        paths.append(f"/admin/{model._meta.app_label}/")
        for pattern in model_admin.get_urls():
            route = str(pattern.pattern).lstrip("^").rstrip("$")
            pk = str(obj.pk) if obj is not None else "1"
            paths.append(prefix + _concrete(route, {"object_id": pk, "pk": pk}))
    return sorted(set(paths))


@pytest.fixture
def world(receiver):
    hook = make_webhook(receiver.url, name="secret-place")
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    Webhook.objects.filter(pk=hook.pk).update(disabled_at=timezone.now())
    hook.refresh_from_db()
    delivery = Delivery.objects.get()
    return {Webhook: hook, Delivery: delivery, Event: delivery.event,
            User: User.objects.create_superuser("root", "root@example.com", "pw")}  # fmt: skip


def _snapshot(hook: Webhook) -> tuple:
    hook.refresh_from_db()
    return (hook.secret, hook.previous_secret, hook.disabled_at, Attempt.objects.count(),
            Event.objects.count(), sorted(Delivery.objects.values_list("status", "attempts",
                                                                       "manual")))  # fmt: skip


def test_every_admin_url_refuses_a_staff_member_without_permissions(client, world, receiver):
    hook = world[Webhook]
    staff = User.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    client.force_login(staff)
    before, requests_before = _snapshot(hook), len(receiver.requests)
    paths = admin_paths(world)
    assert f"/admin/hooks/webhook/{hook.pk}/rotate-secret/" in paths  # the walk is complete
    action = {"action": "redeliver", "_selected_action": [str(world[Delivery].pk)],
              "confirm": "yes", "post": "yes"}  # fmt: skip
    for path in paths:
        for method in ("get", "post"):
            response = getattr(client, method)(path, action if method == "post" else None)
            page = response.content.decode(errors="replace")
            if path in OPEN_TO_STAFF:
                assert hook.url not in page and "whsec_" not in page, (method, path)
                continue
            assert response.status_code in (302, 403, 404, 405), (method, path)
            if response.status_code == 302:  # to a login page or a URL walked here too
                target = response["Location"]
                assert "/login/" in target or target in paths, (method, path, target)
            assert hook.url not in page and "whsec_" not in page, (method, path)
    assert _snapshot(hook) == before and len(receiver.requests) == requests_before


def test_a_view_permission_shows_the_replay_page_but_does_not_act(client, world, receiver):
    hook = world[Webhook]
    staff = User.objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_webhook"))
    client.force_login(staff)
    before = _snapshot(hook)
    assert client.get(reverse("admin:hooks_webhook_replay", args=[hook.pk])).status_code == 200
    for name in ("test", "rotate", "enable", "replay"):
        url = reverse(f"admin:hooks_webhook_{name}", args=[hook.pk])
        assert client.post(url, {"confirm": "yes"}).status_code == 403, name
    assert _snapshot(hook) == before


def test_the_admin_index_links_only_what_the_user_may_open(client, world):
    staff = User.objects.create_user("plain", "plain@example.com", "pw", is_staff=True)
    client.force_login(staff)
    page = client.get(reverse("admin:index")).content.decode()
    assert "Webhook dashboard" not in page and "Server configuration" not in page

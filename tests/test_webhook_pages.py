"""One look across the four webhook pages (a server webhook and a route webhook in the
admin, a namespace's webhook, a user's notification webhook): the same test button, the
same words for the secret, and the same table of recent deliveries, whose rows open the
delivery and send it again."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from hooks.models import Delivery
from hooks.worker.attempt import deliver_due
from tests.test_webhook_rules import AccountSettings, Admin, NamespacePage, RouteAdmin

pytestmark = pytest.mark.django_db

COLUMNS = ["When", "Event", "Outcome", "Response", "Duration", "Attempts", ""]


def _test_button(entry) -> str:
    if isinstance(entry, Admin):
        return reverse("admin:hooks_webhook_test", args=[entry.pk])
    if isinstance(entry, RouteAdmin):
        return reverse("admin:routes_routewebhook_test", args=[entry.pk])
    if isinstance(entry, NamespacePage):
        return f"/namespaces/acme/webhooks/{entry.pk}/test/"
    return reverse("accounts:test_webhook")


def _table(page: str) -> str:
    found = re.search(r'<table id="deliveries".*?</table>', page, re.S)
    assert found, "no table of recent deliveries"
    return found.group()


def _cells(html: str, tag: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
    ]


PAGES = [Admin, RouteAdmin, NamespacePage, AccountSettings]


@pytest.mark.parametrize("entry_point", PAGES, ids=lambda e: e.__name__)
def test_every_webhook_page_has_one_test_button_secret_wording_and_deliveries_table(
    entry_point, receiver
):
    entry = entry_point()
    entry.submit(receiver.url, "generate")
    page = entry.look()
    assert "Send test event" in page and "Generate test event" not in page
    assert "set (write-only)" in page  # the secret's state, in the same words everywhere
    assert 'id="no-deliveries"' in page and "Nothing sent yet" in page

    entry.client.post(_test_button(entry))
    assert receiver.wait_for(1)
    page = entry.look()
    table = _table(page)
    assert _cells(table, "th") == COLUMNS
    delivery = Delivery.objects.get(webhook=entry.webhook())
    (link,) = re.findall(r'<a href="([^"]+)" title="webhook-id ([^"]+)"', table)
    assert link[1] == str(delivery.pk)
    assert "Succeeded" in table and "200" in table and " ms" in table

    opened = entry.client.get(link[0])  # the row opens the delivery, with its attempt
    assert opened.status_code == 200 and str(delivery.pk).encode() in opened.content

    (again,) = re.findall(r'<form class="inline" method="post" action="([^"]+)"', table)
    entry.client.post(again)  # Redeliver: once more, with the same webhook-id
    assert Delivery.objects.get(pk=delivery.pk).status == "pending"
    deliver_due()
    assert receiver.wait_for(2)
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(delivery.pk)}

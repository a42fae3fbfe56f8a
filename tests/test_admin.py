"""The admin: creating webhooks (and refusing bad input), history, redelivery."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

import hooks
from hooks import emit
from hooks.models import Attempt, Delivery, Webhook
from hooks.tools.receiver import Reply
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db
ADD = reverse("admin:hooks_webhook_add")


def form(**overrides) -> dict:
    data = {
        "name": "CI",
        "url": "https://ci.example.com/hook",
        "active": "on",
        "scope": "server",
        "owner": "",
        "namespace": "",
        "event_types": [TEST_EVENT],
        "format": "auto",
        "data_template": "",
        "headers_text": "",
        "timeout": "",
        "verify_tls": "on",
        "basic_auth_username": "",
        "new_basic_auth_password": "",
        "secret_action": None,  # not sent: keep (a new webhook gets one generated)
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_staff_creates_a_webhook_and_sees_its_secret_once(admin_client):
    response = admin_client.post(ADD, form(headers_text="X-Api-Key: abc"), follow=True)
    assert response.status_code == 200
    webhook = Webhook.objects.get()
    assert webhook.secret.startswith("whsec_")
    assert webhook.headers == {"X-Api-Key": "abc"} and webhook.event_types == [TEST_EVENT]
    assert webhook.secret in response.content.decode()
    page = admin_client.get(
        reverse("admin:hooks_webhook_change", args=[webhook.pk])
    ).content.decode()
    assert webhook.secret not in page and "abc" not in page  # write-only afterwards


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("url", "not-a-url", "Only http and https"),
        ("url", "ftp://example.com/file", "Only http and https"),
        ("url", "http://", "no host"),
        (
            "url",
            "http://10.0.0.1/hook",
            "allows such addresses with WEBHOOK_ALLOWED_NETWORKS in .env",
        ),
        ("data_template", '{"a": ', "not valid JSON"),
        ("data_template", "[" * 5000 + "]" * 5000, "nests too deeply"),
        ("payload_filter", "[" * 5000 + "]" * 5000, "The filter nests too deeply"),
        ("headers_text", "X-Evil: a\rInjected: 1", "carriage return"),
        ("headers_text", "Bad Name: x", "not a valid header name"),
        ("headers_text", "webhook-id: forged", "set by webhookhub itself"),
        ("headers_text", "no colon here", "Name: value"),
        ("pasted_secret", "hunter2", "16 to 256 characters"),
        ("pasted_secret", "whsec_c2hvcnQ=", "24 to 64 random bytes"),
        ("timeout", "9999", "between 0 and"),
        ("basic_auth_username", "a:b", "may not contain"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(admin_client, field, value, message):
    response = admin_client.post(ADD, form(**{field: value}))
    assert response.status_code == 200  # the form again, not a redirect
    assert message in response.content.decode()
    assert Webhook.objects.count() == 0


def test_internal_addresses_are_refused_when_saved(admin_client, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    for url in (
        "http://127.0.0.1/x",
        "http://localhost:8000/",
        "http://[::1]/",
        "http://2130706433/",
    ):
        response = admin_client.post(ADD, form(url=url))
        assert "not allowed" in response.content.decode(), url
    assert Webhook.objects.count() == 0


def test_editing_keeps_write_only_values(admin_client):
    webhook = make_webhook(
        "https://ci.example.com/hook", headers={"X-Api-Key": "abc"}, basic_auth_username="u",
        basic_auth_password="pw",
    )  # fmt: skip
    secret = webhook.secret
    url = reverse("admin:hooks_webhook_change", args=[webhook.pk])
    response = admin_client.post(
        url,
        form(
            name="renamed", headers_text="X-Api-Key: ********\nX-Other: 1", basic_auth_username="u"
        ),
    )
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.name == "renamed" and webhook.secret == secret
    assert webhook.headers == {"X-Api-Key": "abc", "X-Other": "1"}
    assert webhook.basic_auth_password == "pw"


def test_history_pages_and_filters_render(admin_client, receiver):
    receiver.respond = lambda request: Reply(500, body=b'{"error": "boom"}')
    webhook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    delivery = Delivery.objects.get()
    changelist = reverse("admin:hooks_delivery_changelist")
    for query in (
        "",
        "?status__exact=pending",
        f"?webhook__id__exact={webhook.pk}",
        f"?event__type={TEST_EVENT}",
        "?created_at__gte=2020-01-01+00%3A00%3A00%2B00%3A00",
    ):
        response = admin_client.get(changelist + query)
        assert response.status_code == 200 and str(delivery.pk) in response.content.decode(), query
    assert (
        str(delivery.pk)
        not in admin_client.get(changelist + "?status__exact=failed").content.decode()
    )
    detail = admin_client.get(
        reverse("admin:hooks_delivery_change", args=[delivery.pk])
    ).content.decode()
    assert "Request" in detail and "Response" in detail and "boom" in detail
    assert "webhook-signature" in detail
    for name in ("hooks_event_changelist", "hooks_webhook_changelist"):
        assert admin_client.get(reverse(f"admin:{name}")).status_code == 200


def test_redeliver_action_makes_a_new_attempt_with_the_same_id(admin_client, receiver):
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded"
    changelist = reverse("admin:hooks_delivery_changelist")
    selection = {"action": "redeliver", "_selected_action": [str(delivery.pk)]}
    confirm = admin_client.post(changelist, selection).content.decode()
    assert "Redeliver <strong>1</strong> delivery?" in confirm
    assert 'class="breadcrumbs"' in confirm and "Deliveries</a> › Redeliver" in confirm
    assert deliver_due() == 0  # nothing happens before the confirmation
    response = admin_client.post(changelist, {**selection, "confirm": "yes"}, follow=True)
    assert "1 delivery queued for redelivery" in response.content.decode()
    assert deliver_due() == 1
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(delivery.pk)] * 2
    attempts = list(delivery.attempt_set.values_list("number", "trigger"))
    assert attempts == [(1, Attempt.Trigger.AUTOMATIC), (2, Attempt.Trigger.MANUAL)]
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


def test_a_failed_redelivery_gets_one_attempt_only(admin_client, receiver):
    receiver.respond = lambda request: Reply(410)
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    delivery = Delivery.objects.get()
    admin_client.post(
        reverse("admin:hooks_delivery_changelist"),
        {"action": "redeliver", "_selected_action": [str(delivery.pk)], "confirm": "yes"},
    )
    receiver.respond = lambda request: Reply(500)
    assert deliver_due() == 1  # sent although the webhook is disabled: a person asked
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2


def test_the_admin_is_branded_with_a_favicon_and_readable_names(admin_client, client):
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert "webhookhub administration" in index and "Django administration" not in index
    assert "API tokens" in index and "Api tokens" not in index
    assert 'rel="icon" href="/static/webhookhub/favicon.svg"' in index
    assert 'rel="icon"' in client.get("/accounts/login/").content.decode()
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"] == "/static/webhookhub/favicon.svg"


def test_the_delivery_list_reads_at_a_glance(admin_client, receiver):
    make_webhook(receiver.url, name="CI")
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    delivery = Delivery.objects.get()
    page = admin_client.get(reverse("admin:hooks_delivery_changelist")).content.decode()
    assert f'<code title="{delivery.id}">{str(delivery.id)[:8]}</code>' in page
    assert "✓ Succeeded" in page and "#1c7c3a" in page
    assert " ms</td>" in page and ">CI<" in page
    for column in ("status", "to", "event type", "duration"):
        assert f">{column}<" in page.lower() or f">{column.capitalize()}<" in page


def test_a_delivery_page_has_a_redeliver_button(admin_client, receiver):
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    delivery = Delivery.objects.get()
    page = admin_client.get(reverse("admin:hooks_delivery_change", args=[delivery.pk]))
    assert 'id="redeliver"' in page.content.decode()
    url = reverse("admin:hooks_delivery_redeliver", args=[delivery.pk])
    assert admin_client.get(url).status_code == 403  # only a POST changes anything
    answer = admin_client.post(url, follow=True).content.decode()
    assert "Queued for redelivery" in answer
    assert deliver_due() == 1
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(delivery.pk)] * 2


def test_a_big_delivery_list_is_not_counted_in_full_on_postgresql(
    admin_client, receiver, monkeypatch
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from hooks.tools import admin_views

    if connection.vendor != "postgresql":
        pytest.skip("the estimate is PostgreSQL's (SQLite counts)")
    make_webhook(receiver.url)
    for n in range(3):
        emit(TEST_EVENT, {"n": n})
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Delivery._meta.db_table}")
    monkeypatch.setattr(admin_views, "ESTIMATE_ABOVE", 0)  # as if the table were huge
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(reverse("admin:hooks_delivery_changelist")).status_code == 200
    counts = [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper() and Delivery._meta.db_table in q["sql"]
    ]
    assert not counts, counts


def test_a_webhook_that_can_receive_nothing_is_refused(admin_client, admin_user):
    response = admin_client.post(ADD, form(event_types=None))
    assert "Pick at least one event type, or All events." in response.content.decode()
    user_only_server = form(
        scope="user", owner=str(admin_user.pk), event_types=["swarm.queue_start"]
    )
    response = admin_client.post(ADD, user_only_server)
    assert "A user webhook never receives swarm.queue_start" in response.content.decode()
    assert Webhook.objects.count() == 0


def test_the_add_form_shows_only_what_a_new_webhook_has(admin_client):
    page = admin_client.get(ADD).content.decode()
    assert "Remove the password" not in page and ">State:<" not in page
    assert "All events of its scope" in page
    for group in ("job", "swarm", "user", "webhook"):
        assert f"<label>{group}</label>" in page, group


def test_the_webhook_list_shows_state_owner_and_last_delivery(admin_client, receiver, ann):
    from django.utils import timezone

    on = make_webhook(receiver.url, name="on")
    make_webhook(receiver.url, name="broken", disabled_at=timezone.now(), disabled_reason="410")
    make_webhook(receiver.url, name="mine", scope="user", owner=ann)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    page = admin_client.get(reverse("admin:hooks_webhook_changelist")).content.decode()
    rows = {name: row for row in page.split("<tr")[1:] for name in ("on", "broken", "mine")
            if f">{name}</a>" in row}  # fmt: skip
    assert 'alt="True"' in rows["on"] and 'alt="False"' in rows["broken"]
    assert "ann@example.com" in rows["mine"]
    assert "✓" in rows["on"] and f"{on.deliveries.first().created_at:%Y-%m-%d}" in rows["on"]


def test_a_webhooks_page_shows_only_what_its_scope_has(admin_client, django_user_model):
    from accounts import notification

    server = make_webhook("https://ci.example.com/hook")
    ann = django_user_model.objects.create_user("ann@example.com", "ann@example.com", "pw")
    users, _ = notification.save(ann, "https://ann.example.com/hook", hooks.SecretChange("remove"))
    assert users.name == "Notifications of ann@example.com"  # not one name for every user's
    page = admin_client.get(
        reverse("admin:hooks_webhook_change", args=[server.pk])
    ).content.decode()
    assert (
        'name="owner"' not in page and 'name="namespace"' not in page and 'name="scope"' not in page
    )
    page = admin_client.get(reverse("admin:hooks_webhook_change", args=[users.pk])).content.decode()
    assert 'name="owner"' in page and 'name="namespace"' not in page
    add = admin_client.get(ADD).content.decode()
    assert (
        'name="scope"' in add and "hooks/webhook_form.js" in add
    )  # the add form follows the scope
    saved = admin_client.post(reverse("admin:hooks_webhook_change", args=[server.pk]),
                              form(name="CI 2", url=server.url, scope="user"))  # fmt: skip
    assert saved.status_code == 302
    server.refresh_from_db()
    assert server.name == "CI 2" and server.scope == "server"  # its scope stays


def test_a_webhooks_page_offers_only_the_event_types_its_scope_receives(admin_client):
    webhook = make_webhook("https://ci.example.com/hook")  # a server webhook
    page = admin_client.get(reverse("admin:hooks_webhook_change", args=[webhook.pk]))
    offered = set(re.findall(r'name="event_types" value="([^"]+)"', page.content.decode()))
    assert "job.finished" in offered and "swarm.queue_start" in offered
    assert not offered & {"build.finished", "cron", "images", "invite.sent", "variables",
                          "objects", "ssh_keys"}  # fmt: skip


def test_the_add_form_asks_the_scope_first_and_says_which_scope_gets_each_type(admin_client):
    page = admin_client.get(ADD).content.decode()
    assert page.index('name="scope"') < page.index('name="event_types"')
    boxes = re.findall(r'<input type="checkbox" name="event_types"[^>]*>', page)
    assert boxes and all("data-scopes=" in box for box in boxes)
    build = next(box for box in boxes if 'value="build.finished"' in box)
    assert 'data-scopes="namespace"' in build and "title=" in build


def test_deliveries_are_listed_as_such_and_a_delivery_opens_with_its_outcome(
    admin_client, receiver
):
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    listing = admin_client.get(reverse("admin:hooks_delivery_changelist")).content.decode()
    assert "<h1>Deliveries</h1>" in listing and "Select delivery to change" not in listing
    delivery = Delivery.objects.get()
    page = admin_client.get(reverse("admin:hooks_delivery_change", args=[delivery.pk]))
    labels = re.findall(r"<label>([^<]+):</label>", page.content.decode())
    assert labels[:3] == ["Status", "Webhook", "Event"], labels
    assert "Signed by" not in labels and "Retry schedule" not in labels


def test_the_admin_index_opens_with_webhooks_and_links_the_api_docs(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    apps = re.findall(r'class="app-([a-z_]+) module', page)
    assert apps[0] == "hooks" and apps.index("axes") > apps.index("jobs"), apps
    assert 'href="/api/v1/docs"' in page
    assert 'href="/api/v1/docs"' in admin_client.get("/accounts/settings/").content.decode()


def test_the_event_list_names_a_namespace_by_its_path(admin_client, admin_user):
    from namespaces.models import Namespace

    acme = Namespace.objects.create(owner=admin_user, name="acme", path="acme")
    emit("variables", {"action": "created", "variable": {"key": "A"}}, namespace=str(acme.pk))
    page = admin_client.get(reverse("admin:hooks_event_changelist")).content.decode()
    assert '<td class="field-namespace_path">acme</td>' in page

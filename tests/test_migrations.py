"""Data migrations, run backwards and forwards on the test database."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE, AFTER = [("hooks", "0001_initial")], [("hooks", "0002_delivery_signed_by")]
ENCRYPTED = [("hooks", "0003_encrypt_secrets")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def back_to_the_latest():
    """Later tests need the whole schema again."""
    yield
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes())


def test_a_stored_callback_secret_becomes_a_reference_to_its_webhook():
    old = migrate(BEFORE)
    try:
        Webhook, Event = old.get_model("hooks", "Webhook"), old.get_model("hooks", "Event")
        Delivery = old.get_model("hooks", "Delivery")
        secret = "whsec_" + "A" * 44
        hook = Webhook.objects.create(name="n", url="https://example.com/", scope="user",
                                      secret=secret)  # fmt: skip
        event = Event.objects.create(type="job.callback", payload={}, created_at=timezone.now())
        for target_secret in (secret, "whsec_gone" + "B" * 40, ""):
            Delivery.objects.create(event=event, target_url="https://example.com/cb",
                                    target_secret=target_secret)  # fmt: skip
    finally:
        new = migrate(AFTER)
    rows = sorted(new.get_model("hooks", "Delivery").objects.values_list("signed_by_id", flat=True),
                  key=lambda v: v or 0)  # fmt: skip
    assert rows == [None, None, hook.pk]
    columns = [c.name for c in connection.introspection.get_table_description(
        connection.cursor(), "hooks_delivery")]  # fmt: skip
    assert "target_secret" not in columns


def test_secrets_stored_before_encryption_are_encrypted_by_the_migration():
    old = migrate(AFTER)
    Webhook = old.get_model("hooks", "Webhook")
    secret = "whsec_" + "C" * 44
    Webhook.objects.create(name="n", url="https://example.com/", secret=secret,
                           headers={"X-Api-Key": "key-9"}, basic_auth_password="pw-9")  # fmt: skip
    new = migrate(ENCRYPTED)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret, headers, basic_auth_password FROM hooks_webhook")
        raw = " ".join(cursor.fetchone())
    assert secret not in raw and "key-9" not in raw and "pw-9" not in raw
    hook = new.get_model("hooks", "Webhook").objects.get()
    assert (hook.secret, hook.headers, hook.basic_auth_password) == (
        secret, {"X-Api-Key": "key-9"}, "pw-9"
    )  # fmt: skip


def test_namespace_webhooks_and_swarmui_hooks_follow_redirects_after_the_migration():
    old = migrate([("hooks", "0011_large_values")])
    Webhook = old.get_model("hooks", "Webhook")
    made = {
        "namespace": dict(scope="namespace", namespace="7"),
        "queue end": dict(scope="server", slot="queue_end"),
        "signup": dict(scope="server", slot="signup"),  # Open WebUI's client does not follow
        "server": dict(scope="server"),
        "user": dict(scope="user"),
    }
    for name, fields in made.items():
        Webhook.objects.create(name=name, url="https://example.com/", **fields)
    new = migrate([("hooks", "0012_follow_redirects")])
    follows = dict(
        new.get_model("hooks", "Webhook").objects.values_list("name", "follow_redirects")
    )
    assert follows == {"namespace": True, "queue end": True, "signup": False, "server": False,
                       "user": False}  # fmt: skip

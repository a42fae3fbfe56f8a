"""Secrets at rest: encrypted in the database, readable through the models, keys rotated
with `webhooks reencrypt`; var/ and the database file are private."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

import hooks
from hooks.encryption import PREFIX, cipher, is_current
from hooks.models import Webhook
from tests.conftest import ROOT, make_webhook

pytestmark = pytest.mark.django_db
SECRET_COLUMNS = ("secret", "previous_secret", "headers", "basic_auth_password")


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def stored(webhook: Webhook) -> dict[str, str]:
    """The row as a database dump shows it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(SECRET_COLUMNS)} FROM hooks_webhook WHERE id = %s", [webhook.pk]
        )
        return dict(zip(SECRET_COLUMNS, cursor.fetchone(), strict=True))


@pytest.fixture
def webhook():
    hook = make_webhook("https://example.com/hook", basic_auth_username="bot",
                        basic_auth_password="hunter2-pw", headers={"X-Api-Key": "key-123"})  # fmt: skip
    hooks.rotate_secret(hook)
    return Webhook.objects.get(pk=hook.pk)


def test_a_database_dump_reveals_no_secret(webhook):
    raw = stored(webhook)
    dump = " ".join(raw.values())
    for plain in (webhook.secret, webhook.previous_secret, "hunter2-pw", "key-123", "X-Api-Key"):
        assert plain not in dump
    assert all(value.startswith(PREFIX) for value in raw.values())
    assert webhook.basic_auth_password == "hunter2-pw"
    assert webhook.headers == {"X-Api-Key": "key-123"}


def test_a_delivery_is_signed_and_sent_with_the_decrypted_values(receiver):
    from hooks import emit
    from hooks.worker.attempt import deliver_due
    from tests.conftest import TEST_EVENT, verify

    hook = make_webhook(receiver.url, headers={"X-Api-Key": "key-123"})
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    [request] = receiver.requests
    verify(Webhook.objects.get(pk=hook.pk), request)
    assert request.headers["X-Api-Key"] == "key-123"


def test_keys_rotate_with_reencrypt(webhook, settings):
    old = list(settings.ENCRYPTION_KEYS)
    settings.ENCRYPTION_KEYS = [new_key(), *old]  # the new key first, the old after
    assert Webhook.objects.get(pk=webhook.pk).secret == webhook.secret  # old rows still read
    assert not is_current(stored(webhook)["secret"])
    call_command("webhooks", "reencrypt")
    assert all(is_current(value) for value in stored(webhook).values())
    settings.ENCRYPTION_KEYS = settings.ENCRYPTION_KEYS[:1]  # old key gone
    again = Webhook.objects.get(pk=webhook.pk)
    assert (again.secret, again.headers) == (webhook.secret, {"X-Api-Key": "key-123"})


def test_a_dropped_key_is_a_clear_error(webhook, settings):
    settings.ENCRYPTION_KEYS = [new_key()]
    with pytest.raises(ImproperlyConfigured, match="reencrypt"):
        Webhook.objects.get(pk=webhook.pk)


def test_values_stored_before_encryption_are_read_and_encrypted_by_reencrypt(webhook):
    with connection.cursor() as cursor:  # as the column held it before
        cursor.execute("UPDATE hooks_webhook SET basic_auth_password = %s", ["plain-pw"])
    assert Webhook.objects.get(pk=webhook.pk).basic_auth_password == "plain-pw"
    call_command("webhooks", "reencrypt")
    assert stored(webhook)["basic_auth_password"].startswith(PREFIX)
    assert Webhook.objects.get(pk=webhook.pk).basic_auth_password == "plain-pw"


def test_the_key_is_a_fernet_key_of_this_installation():
    assert cipher().decrypt(cipher().encrypt(b"x")) == b"x"


def test_var_and_a_new_database_file_are_private(tmp_path):
    db = tmp_path / "hub.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    out = subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert db.stat().st_mode & 0o777 == 0o600
    assert (ROOT / "var").stat().st_mode & 0o777 == 0o700
    if not os.environ.get("ENCRYPTION_KEYS"):
        assert (ROOT / "var" / "encryption_key").stat().st_mode & 0o777 == 0o600

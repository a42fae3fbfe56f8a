"""`dumpdata` writes every encrypted field encrypted (json, jsonl and xml), and `loaddata`
restores the secrets from such a backup with the same ENCRYPTION_KEYS; with other keys it
refuses with a clear error and writes nothing."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.serializers.base import DeserializationError

from hooks.models import Webhook
from namespaces.models import Namespace, Variable
from tests.conftest import make_webhook
from tests.test_namespaces import person

pytestmark = pytest.mark.django_db(transaction=True)
HEADER = "hdr-value-4d1c"
PASSWORD = "basic-pw-93af"
VARIABLE = "var-value-7e20"


@pytest.fixture
def secrets():
    hook = make_webhook("https://receiver.example.com/hook", headers={"X-Key": HEADER},
                        basic_auth_username="u", basic_auth_password=PASSWORD)  # fmt: skip
    owner = person("olga")
    namespace = Namespace.objects.create(name="acme", path="acme", owner=owner)
    Variable.objects.create(namespace=namespace, key="TOKEN", value=VARIABLE, masked=True)
    return hook


def dump(fmt: str, *labels: str) -> str:
    out = io.StringIO()
    call_command("dumpdata", *labels, format=fmt, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["json", "jsonl", "xml"])
def test_a_dump_holds_no_secret_in_clear(secrets, fmt):
    text = dump(fmt, "hooks.webhook", "namespaces.variable")
    for planted in (secrets.secret, HEADER, PASSWORD, VARIABLE):
        assert planted not in text
    assert text.count("fernet:") >= 4


def test_a_dump_restores_every_secret_with_the_same_keys(secrets, tmp_path):
    path = tmp_path / "backup.json"
    path.write_text(dump("json", "hooks.webhook"))
    secret = secrets.secret
    Webhook.objects.all().delete()
    call_command("loaddata", str(path), verbosity=0)
    hook = Webhook.objects.get()
    assert hook.secret == secret and hook.headers == {"X-Key": HEADER}
    assert hook.basic_auth_password == PASSWORD


def test_a_dump_loaded_with_other_keys_is_refused(secrets, tmp_path, settings):
    path = tmp_path / "backup.json"
    path.write_text(dump("json", "hooks.webhook"))
    Webhook.objects.all().delete()
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DeserializationError, match="ENCRYPTION_KEYS"):
        call_command("loaddata", str(path), verbosity=0)
    assert not Webhook.objects.exists()

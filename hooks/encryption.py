"""Secrets at rest: webhook secrets, basic-auth passwords and custom header values are
stored encrypted (Fernet: AES-128-CBC with HMAC-SHA256), so a database dump alone does
not reveal them.

Keys come from ENCRYPTION_KEYS (comma-separated Fernet keys; the first
encrypts, every one decrypts), or from `var/encryption_key`, generated with mode 0600
on first use. To rotate: put a new key first, keep the old one after it, run
`manage.py webhooks reencrypt`, then drop the old key.
"""

from __future__ import annotations

import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models

PREFIX = "fernet:"  # stored values without it are plain text from before encryption


@cache
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"ENCRYPTION_KEYS: a key is not a Fernet key ({exc}).") from None


def cipher() -> MultiFernet:
    keys = tuple(k.strip() for k in settings.ENCRYPTION_KEYS if k.strip())
    if not keys:
        raise ImproperlyConfigured("ENCRYPTION_KEYS is empty.")
    return _cipher(keys)


def encrypt(text: str) -> str:
    return PREFIX + cipher().encrypt(text.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before encryption; re-saved by `webhooks reencrypt`
    try:
        return cipher().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with ENCRYPTION_KEYS: was a key "
            "dropped before `manage.py webhooks reencrypt` ran?"
        ) from None


def seal(text: str) -> str:
    """Text encrypted for a short stay outside the models (a session, a message), with
    the key that encrypts the secrets at rest."""
    return cipher().encrypt(text.encode()).decode()


def unseal(sealed: str) -> str | None:
    """What seal() made, or None when no key opens it (a key dropped since, or not a
    sealed value): a lost one-time display, never an error page."""
    try:
        return cipher().decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError, TypeError, AttributeError):
        return None


def is_current(stored: str) -> bool:
    """Encrypted with the first key (nothing for `reencrypt` to do)."""
    if not stored:
        return True
    if not stored.startswith(PREFIX):
        return False
    first = Fernet(settings.ENCRYPTION_KEYS[0].strip().encode())
    try:
        first.decrypt(stored[len(PREFIX) :].encode())
    except InvalidToken:
        return False
    return True


def _opened(stored: str) -> str:
    """A value as `dumpdata` wrote it (encrypted), for `loaddata`."""
    try:
        return cipher().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ValidationError(
            "An encrypted value cannot be decrypted with ENCRYPTION_KEYS: load a dump with "
            "the keys of the hub that wrote it."
        ) from None


class EncryptedTextField(models.TextField):
    """Text stored encrypted; blank stays blank (nothing to hide, and `if secret:` works
    on the stored row too). `dumpdata` writes it encrypted as stored (value_to_string,
    and hooks/dumps.py for the json formats); `loaddata` decrypts it (to_python)."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else value

    def value_to_string(self, obj) -> str:
        value = self.value_from_object(obj)
        return encrypt(value) if value else ""

    def to_python(self, value):
        if isinstance(value, str) and value.startswith(PREFIX):
            return _opened(value)
        return super().to_python(value)


class EncryptedJSONField(models.TextField):
    """A JSON object (custom headers) stored encrypted as one text value."""

    def get_prep_value(self, value):
        if value in (None, {}, ""):
            return ""
        return encrypt(json.dumps(value, ensure_ascii=False))

    def from_db_value(self, value, expression, connection):
        if not value:
            return {}
        return json.loads(decrypt(value))

    def value_to_string(self, obj) -> str:
        value = self.value_from_object(obj)
        return encrypt(json.dumps(value, ensure_ascii=False)) if value else ""

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if isinstance(value, str) and value.startswith(PREFIX):
            return json.loads(_opened(value))
        return json.loads(value) if value else {}

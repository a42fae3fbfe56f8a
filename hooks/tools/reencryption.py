"""Key rotation for secrets at rest: every encrypted value is written again with the first
of ENCRYPTION_KEYS (values from before encryption get encrypted too)."""

from __future__ import annotations

from django.db import transaction

from hooks.encryption import EncryptedJSONField, EncryptedTextField
from hooks.models import Webhook

BATCH = 500


def encrypted_fields() -> list[str]:
    return [
        f.name
        for f in Webhook._meta.concrete_fields
        if isinstance(f, EncryptedTextField | EncryptedJSONField)
    ]


def reencrypt(batch: int = BATCH) -> int:
    """Re-encrypt every webhook's secrets, a batch per transaction; returns how many."""
    fields = encrypted_fields()
    pks = list(Webhook.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), batch):
        with transaction.atomic():
            webhooks = list(
                Webhook.objects.select_for_update().filter(pk__in=pks[start : start + batch])
            )
            Webhook.objects.bulk_update(webhooks, fields)
    return len(pks)

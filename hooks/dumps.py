"""`dumpdata`'s json format (and, through hooks/dumps_jsonl.py, jsonl) with every
encrypted field written encrypted (Fernet, with the first of ENCRYPTION_KEYS), never in
clear (settings.SERIALIZATION_MODULES).

Django writes a text value as it is, not through the field's value_to_string, so the
encrypted fields are picked out here. `loaddata` reads such a dump back with the same
ENCRYPTION_KEYS (the fields' to_python decrypts), so a backup restores every secret and a
dump alone reveals none. The xml format goes through value_to_string already."""

from __future__ import annotations

from django.core.serializers import json as django_json

from hooks.encryption import EncryptedJSONField, EncryptedTextField


def sealed_fields(serializer: type) -> type:
    """A Django serializer that writes the encrypted fields as stored."""

    class Serializer(serializer):
        def _value_from_field(self, obj, field):
            if isinstance(field, EncryptedTextField | EncryptedJSONField):
                return field.value_to_string(obj)
            return super()._value_from_field(obj, field)

    return Serializer


Serializer = sealed_fields(django_json.Serializer)
Deserializer = django_json.Deserializer

"""`dumpdata`'s jsonl format with the encrypted fields written as stored (hooks/dumps.py)."""

from __future__ import annotations

from django.core.serializers import jsonl as django_jsonl

from hooks.dumps import sealed_fields

Serializer = sealed_fields(django_jsonl.Serializer)
Deserializer = django_jsonl.Deserializer

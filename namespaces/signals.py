"""What goes with a deleted row: a namespace's webhooks (the engine keys them by the
namespace's id, not by a foreign key), a file's stored bytes, a cron's schedule."""

from __future__ import annotations

from django.db import transaction

from hooks.models import Scope, Webhook


def drop_webhooks(sender, instance, **kwargs) -> None:
    Webhook.objects.filter(scope=Scope.NAMESPACE, namespace=instance.key).delete()


def drop_file(sender, instance, **kwargs) -> None:
    """A deleted image's or object's file leaves the storage once the deletion commits
    (a rolled-back deletion keeps both)."""
    if instance.file:
        storage, name = instance.file.storage, instance.file.name
        transaction.on_commit(lambda: storage.delete(name))

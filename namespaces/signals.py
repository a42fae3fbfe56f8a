"""A deleted namespace takes its webhooks (and so their deliveries) with it: the engine
keys them by the namespace's id, not by a foreign key."""

from __future__ import annotations

from hooks.models import Scope, Webhook


def drop_webhooks(sender, instance, **kwargs) -> None:
    Webhook.objects.filter(scope=Scope.NAMESPACE, namespace=instance.key).delete()

"""Every change to a route event or a route webhook (and its engine webhook) is recorded:
who, when, what. Written from model signals, so every path writes it: the admin, the
`webhooks` command, a shell. Who is the admin user (`acting_as`) or, outside a request,
the operating-system account of the process. Secrets show as 'changed', never their value.
"""

from __future__ import annotations

import contextvars
import getpass
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from hooks.models import Webhook
from routes.models import AuditRecord, RouteEvent, RouteWebhook

_actor: contextvars.ContextVar = contextvars.ContextVar("route_audit_actor", default=None)
HIDDEN = {"secret", "previous_secret", "basic_auth_password"}
HEADERS = "headers"  # names shown, values hidden
WEBHOOK_FIELDS = ["name", "url", "active", "secret", "headers", "basic_auth_username",
                  "basic_auth_password", "verify_tls", "timeout", "follow_redirects"]  # fmt: skip
EVENT_FIELDS = ["label", "method", "pattern"]


@contextmanager
def acting_as(user) -> Iterator[None]:
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


def _who() -> tuple[object, str]:
    user = _actor.get()
    if user is not None and user.is_authenticated:
        return user, user.get_username()
    try:
        account = getpass.getuser()
    except OSError:
        account = "unknown"
    return None, f"{account}@{socket.gethostname()} (no web request)"


def _shown(name: str, value):
    if name in HIDDEN:
        return "set" if value else ""
    if name == HEADERS:
        return sorted(value or {})
    return value


def _snapshot(instance, fields: list[str]) -> dict:
    return {name: _shown(name, getattr(instance, name)) for name in fields}


def record(kind: str, obj, action: str, changes: dict) -> None:
    actor, label = _who()
    AuditRecord.objects.create(
        actor=actor, actor_label=label[:200], kind=kind, object_id=str(obj.pk),
        object_repr=str(obj)[:300], action=action, changes=changes,
    )  # fmt: skip


def _before(sender, instance, **kwargs) -> None:
    fields = EVENT_FIELDS if sender is RouteEvent else WEBHOOK_FIELDS
    old = sender.objects.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_before = _snapshot(old, fields) if old else None
    instance._audit_raw_before = {n: getattr(old, n) for n in HIDDEN & set(fields)} if old else None


def _diff(instance, fields: list[str]) -> dict:
    before, after = instance._audit_before or {}, _snapshot(instance, fields)
    changes = {n: [before.get(n), after[n]] for n in fields if before.get(n) != after[n]}
    raw_before = instance._audit_raw_before or {}
    for name in HIDDEN & set(fields):  # a secret replaced by another: still a change
        if name in raw_before and raw_before[name] != getattr(instance, name):
            changes[name] = [
                "set" if raw_before[name] else "",
                "changed" if getattr(instance, name) else "",
            ]
    return changes


def _route_event_saved(sender, instance, created, **kwargs) -> None:
    changes = _diff(instance, EVENT_FIELDS)
    if created or changes:
        record("route event", instance, "created" if created else "changed", changes)


def _webhook_saved(sender, instance, created, **kwargs) -> None:
    if created or not RouteWebhook.objects.filter(webhook=instance).exists():
        return  # a new route webhook is recorded when its route side is created
    changes = _diff(instance, WEBHOOK_FIELDS)
    if changes:
        record("route webhook", instance, "changed", changes)


def _route_webhook_saved(sender, instance, created, **kwargs) -> None:
    if created:
        record("route webhook", instance.webhook, "created",
               _snapshot(instance.webhook, WEBHOOK_FIELDS))  # fmt: skip


def _events_changed(sender, instance, action, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    labels = sorted(RouteEvent.objects.filter(pk__in=pk_set or []).values_list("label", flat=True))
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    record("route webhook", instance.webhook, "changed", {f"route events {verb}": labels})


def _deleted(kind: str):
    def handler(sender, instance, **kwargs) -> None:
        record(kind, instance, "deleted", {})

    return handler


def connect() -> None:
    for model in (RouteEvent, Webhook):
        pre_save.connect(_before, sender=model, dispatch_uid=f"route-audit-before-{model.__name__}")
    post_save.connect(_route_event_saved, sender=RouteEvent, dispatch_uid="route-audit-event")
    post_save.connect(_webhook_saved, sender=Webhook, dispatch_uid="route-audit-webhook")
    post_save.connect(_route_webhook_saved, sender=RouteWebhook, dispatch_uid="route-audit-rw")
    m2m_changed.connect(_events_changed, sender=RouteWebhook.events.through,
                        dispatch_uid="route-audit-m2m")  # fmt: skip
    post_delete.connect(
        _deleted("route event"), sender=RouteEvent, dispatch_uid="route-audit-del-e", weak=False
    )
    post_delete.connect(
        _deleted("route webhook"), sender=RouteWebhook, dispatch_uid="route-audit-del-w", weak=False
    )

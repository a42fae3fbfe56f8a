"""A user's notification webhook: one user-scope webhook per account."""

from __future__ import annotations

import hooks
from hooks.models import ALL_EVENTS, BodyFormat, Delivery, Scope, Webhook


def name_for(user) -> str:
    """Its name in the admin's lists, which hold every user's: whose it is."""
    return f"Notifications of {user.email or user.get_username()}"[:100]


SHAPES = [
    (BodyFormat.AUTO, 'As Open WebUI\'s docs: {"event": "job_finished", "job": {…}}'),
    (BodyFormat.OPEN_WEBUI, 'As Open WebUI\'s code: {"action", "message", "title", "url"}'),
]


def webhook_of(user) -> Webhook | None:
    return Webhook.objects.filter(scope=Scope.USER, owner=user).order_by("pk").first()


def save(user, url: str, signed: bool, shape: str | None = None) -> tuple[Webhook | None, str]:
    """Set, change or remove (blank URL) the user's webhook. Returns it and a secret
    that was just generated (to show once), or ''."""
    hook = webhook_of(user)
    if not url:
        if hook:
            hook.delete()
        return None, ""
    if hook is None:
        # Every event another app addresses to this user (notify_user), as Open WebUI's
        # notification webhook gets every notification; today that is job.finished.
        hook = Webhook(scope=Scope.USER, owner=user, event_types=[ALL_EVENTS])
    hook.name = name_for(user)  # the email may have changed since
    hook.url = url
    if shape is not None and shape != shape_of(hook):  # a format staff chose stays otherwise
        hook.format = shape
    new_secret = ""
    if signed and not hook.secret:
        hook.secret = new_secret = hooks.generate_secret()
    elif not signed:
        hook.secret = hook.previous_secret = ""
    hook.save()
    return hook, new_secret


def shape_of(hook: Webhook | None) -> str:
    """The settings page's Payload choice for a webhook (a format staff set stays)."""
    return (
        BodyFormat.OPEN_WEBUI if hook and hook.format == BodyFormat.OPEN_WEBUI else BodyFormat.AUTO
    )


def recent_deliveries(user, limit: int = 20):
    hook = webhook_of(user)
    if hook is None:
        return Delivery.objects.none()
    return (
        Delivery.objects.filter(webhook=hook)
        .select_related("event")
        .order_by("-created_at")[:limit]
    )

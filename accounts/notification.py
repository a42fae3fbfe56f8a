"""A user's notification webhook: one user-scope webhook per account."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

import hooks
from hooks import USER
from hooks.models import ALL_EVENTS, BodyFormat, Scope, Webhook


def name_for(user) -> str:
    """Its name in the admin's lists, which hold every user's: whose it is."""
    return f"Notifications of {user.email or user.get_username()}"[:100]


SHAPES = [
    (BodyFormat.AUTO, 'As Open WebUI\'s docs: {"event": "job_finished", "job": {…}}'),
    (BodyFormat.OPEN_WEBUI, 'As Open WebUI\'s code: {"action", "message", "title", "url"}'),
]


def webhook_of(user) -> Webhook | None:
    return Webhook.objects.filter(scope=Scope.USER, owner=user).order_by("pk").first()


def event_choices() -> list[tuple[str, str]]:
    """What a user's webhook may receive: everything addressed to them, or some types
    (their finished jobs; event types staff declared for users, which the hub's
    integrations post through the ingest API)."""
    names = [t.name for t in hooks.event_types() if USER in t.scopes and t.name != "webhook.test"]
    return [(ALL_EVENTS, "Everything addressed to me, now and later"),
            *[(name, name) for name in names]]  # fmt: skip


PACE_FIELDS = ("rate_limit", "rate_burst", "max_in_flight")


def prepare(
    user, url: str, secret: hooks.SecretChange, shape: str | None = None,
    events: list[str] | None = None, follow_redirects: bool | None = None,
    ordered: bool | None = None, pace: dict[str, Any] | None = None,
):  # fmt: skip
    """The checked change of the user's webhook (hooks.prepare_webhook's Plan), or None
    for a blank URL, which removes it. A ValidationError by field when it is wrong.
    None for `shape`, `events`, `follow_redirects` or `ordered`: unchanged (a new
    webhook's default). `pace`: the pacing fields to change (PACE_FIELDS; a None value
    clears one), checked by the same rules as every webhook's; the others stay as they
    are."""
    if not url:
        return None
    if shape is not None and shape not in dict(SHAPES):
        raise ValidationError({"shape": f"A payload shape is one of {', '.join(dict(SHAPES))}."})
    hook = webhook_of(user)
    changes = {"name": name_for(user), "url": url, "secret": secret}  # the email may change
    if hook is None:
        # By default every event addressed to this user, as Open WebUI's notification
        # webhook gets every notification: their finished jobs, and declared user events.
        hook = hooks.new_webhook(USER, owner=user)
        changes["events"] = [ALL_EVENTS]
    if events is not None:
        changes["events"] = [ALL_EVENTS] if ALL_EVENTS in events else events
    if shape is not None and shape != shape_of(hook):  # a format staff chose stays otherwise
        changes["format"] = shape
    if follow_redirects is not None:
        changes["follow_redirects"] = follow_redirects
    if ordered is not None:
        changes["ordered"] = ordered
    changes.update({name: value for name, value in (pace or {}).items() if name in PACE_FIELDS})
    return hooks.prepare_webhook(hook, changes)


def signed_change(user, signed: bool) -> hooks.SecretChange:
    """The older `signed` switch as a secret change: on keeps a secret (or makes one)."""
    hook = webhook_of(user)
    if not signed:
        return hooks.SecretChange("remove")
    return hooks.SecretChange("keep" if hook is None or hook.secret else "generate")


def save(
    user, url: str, secret: hooks.SecretChange, shape: str | None = None,
    events: list[str] | None = None, follow_redirects: bool | None = None,
    ordered: bool | None = None, pace: dict[str, Any] | None = None,
):  # fmt: skip
    """Set, change or remove (blank URL) the user's webhook. Returns it and a secret
    that was just generated (to show once), or ''."""
    plan = prepare(user, url, secret, shape, events, follow_redirects, ordered, pace)
    return apply(user, plan)


def apply(user, plan) -> tuple[Webhook | None, str]:
    """Store a prepared change (None: remove the webhook)."""
    if plan is None:
        hook = webhook_of(user)
        if hook:
            hook.delete()
        return None, ""
    saved = plan.save(by=user)
    return saved.webhook, saved.new_secret


def shape_of(hook: Webhook | None) -> str:
    """The settings page's Payload choice for a webhook (a format staff set stays)."""
    return (
        BodyFormat.OPEN_WEBUI if hook and hook.format == BodyFormat.OPEN_WEBUI else BodyFormat.AUTO
    )

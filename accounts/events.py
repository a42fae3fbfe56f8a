"""The account events of the catalog, the signup slot, and the user notification entry
point (`notify_user`), which other apps use to reach a user's notification webhook."""

from __future__ import annotations

from django.conf import settings

import hooks
from accounts.models import SiteConfig
from accounts.presence import is_present

SIGNUP = "user.signup"


def register() -> None:
    hooks.register_event_type(
        SIGNUP,
        "A new account was created (signup page, admin, createsuperuser or API).",
        scopes=(hooks.SERVER,),
        example={
            "event": "new_user",
            "user": {"id": 1, "email": "tim@example.com", "name": "Tim"},
        },
        summary="New user signed up: {user[name]}",
    )
    hooks.register_slot(
        hooks.Slot(
            name="signup",
            label="Signup webhook",
            event_type=SIGNUP,
            env_var="WEBHOOK_URL",
            help="Told about every new account (Open WebUI's admin webhook).",
        )
    )


def signup_payload(user) -> dict:
    return {
        "event": "new_user",
        "user": {"id": user.pk, "email": user.email, "name": user.display_name},
    }


def user_webhooks_enabled() -> bool:
    switch = SiteConfig.load().enable_user_webhooks
    return settings.ENABLE_USER_WEBHOOKS if switch is None else switch


def wants_notification(user) -> bool:
    """User webhooks are on and the user is away: no page of the hub open (Open WebUI's
    rule, accounts.presence)."""
    return user_webhooks_enabled() and not is_present(user)


def notify_user(user, event_type: str, payload: dict) -> bool:
    """Tell a user's notification webhook, unless a page of theirs is open right now or
    user webhooks are switched off. Returns whether an event was emitted."""
    if not wants_notification(user):
        return False
    hooks.emit(
        event_type, payload, user=user, audience=(hooks.USER,),
        subject=hooks.subject_of("user", user.pk),
    )  # fmt: skip
    return True

"""The account events of the catalog, the signup slot, and the user notification entry
point (`notify_user`)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

import hooks
from hooks import catalog, slots

SIGNUP = "user.signup"
JOB_FINISHED = "job.finished"


def register() -> None:
    if SIGNUP not in {t.name for t in catalog.all_types()}:
        hooks.register_event_type(
            SIGNUP,
            "A new account was created (signup page, admin, createsuperuser or API).",
            scopes=(catalog.SERVER,),
            example={
                "event": "new_user",
                "user": {"id": 1, "email": "tim@example.com", "name": "Tim"},
            },
            summary="New user signed up: {user[name]}",
        )
    if JOB_FINISHED not in {t.name for t in catalog.all_types()}:
        hooks.register_event_type(
            JOB_FINISHED,
            "A job finished (completed, failed, cancelled or timed out).",
            scopes=catalog.SCOPES,
            example={
                "event": "job_finished",
                "job": {
                    "id": "8f2c…",
                    "name": "render",
                    "status": "COMPLETED",
                    "url": "https://hub.example.com/jobs/8f2c…",
                },
            },  # fmt: skip
            summary="{job[name]} finished: {job[status]} — {job[url]}",
        )
    slots.register(
        slots.Slot(
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
    from accounts.models import SiteConfig

    switch = SiteConfig.load().enable_user_webhooks
    return settings.ENABLE_USER_WEBHOOKS if switch is None else switch


def is_active(user) -> bool:
    if user.last_activity is None:
        return False
    idle = (timezone.now() - user.last_activity).total_seconds()
    return idle < settings.USER_INACTIVE_AFTER


def wants_notification(user) -> bool:
    """User webhooks are on and the user is away."""
    return user_webhooks_enabled() and not is_active(user)


def notify_user(user, event_type: str, payload: dict) -> bool:
    """Tell a user's notification webhook, unless they are active right now or user
    webhooks are switched off. Returns whether an event was emitted."""
    if not wants_notification(user):
        return False
    hooks.emit(event_type, payload, user=user, audience=(catalog.USER,))
    return True


def job_finished_payload(job_id: str, name: str, status: str, path: str) -> dict:
    return {
        "event": "job_finished",
        "job": {"id": job_id, "name": name, "status": status, "url": settings.SITE_URL + path},
    }

"""Every new account emits `user.signup`, however it was created; a logout ends the
presence of the session's pages."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver

import hooks
from accounts import presence
from accounts.events import SIGNUP, signup_payload


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.user_signup")
def user_signed_up(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    # In the same transaction as the account (the outbox): a signup that rolls back
    # sends nothing, a committed one is delivered after the commit.
    if created and not raw:
        hooks.emit(SIGNUP, signup_payload(instance), subject=hooks.subject_of("user", instance.pk))


@receiver(user_logged_out, dispatch_uid="accounts.presence_logged_out")
def pages_logged_out(sender, request, user, **kwargs) -> None:
    if user is not None and request is not None:
        presence.logged_out(user, request.session.session_key)

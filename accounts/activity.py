"""Activity tracking: authenticated requests mark the user active, at most one write
per user every ACTIVITY_WRITE_INTERVAL seconds."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

ACTIVITY_WRITE_INTERVAL = timedelta(seconds=30)


def touch(user) -> bool:
    """Record activity now unless it was recorded recently. Returns whether it wrote."""
    now = timezone.now()
    if user.last_activity and now - user.last_activity < ACTIVITY_WRITE_INTERVAL:
        return False
    get_user_model().objects.filter(pk=user.pk).update(last_activity=now)
    user.last_activity = now
    return True


class ActivityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not getattr(request, "skip_activity", False)
        ):
            touch(user)
        return response

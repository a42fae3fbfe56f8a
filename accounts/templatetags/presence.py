"""`{% presence_script %}`: the presence beat (accounts/static/accounts/presence.js) on
every page of a logged-in user, the hub's pages and the admin's alike."""

from __future__ import annotations

from django import template
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html

from accounts.presence import HEARTBEAT

register = template.Library()


@register.simple_tag(takes_context=True)
def presence_script(context) -> str:
    """The script tag, with where to post, how often, and the CSRF token; nothing for a
    visitor who is not logged in."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return format_html(
        '<script src="{}" data-url="{}" data-every="{}" data-csrf="{}" defer></script>',
        static("accounts/presence.js"),
        reverse("accounts:presence"),
        HEARTBEAT,
        get_token(request),
    )

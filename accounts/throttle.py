"""Failed-login throttling (django-axes): how a login attempt is keyed to an account."""

from __future__ import annotations


def login_name(request, credentials: dict | None) -> str:
    """The account an attempt targets, as the backends match it: email addresses without
    regard to case, so `Ann@Example.com` and `ann@example.com` count together."""
    data = credentials if credentials is not None else getattr(request, "POST", {})
    name = (data or {}).get("username") or ""
    return name.strip().lower() if "@" in name else name.strip()

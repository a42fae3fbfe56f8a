"""What the engine knows of namespaces: only their keys. The app that owns them registers
how to name a key and how to find one from what staff type (an id or a path), so the
admin can show "acme/ci" instead of "7" and refuse a namespace that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NamespaceNames:
    label: Callable[[str], str | None]  # key -> its name, None when there is no such namespace
    find: Callable[[str], str | None]  # an id or a path -> its key
    # key -> its owner's email (who is told when its webhooks fail), "" when none
    owner_email: Callable[[str], str] | None = None


_names: NamespaceNames | None = None


def register_namespaces(
    label: Callable[[str], str | None],
    find: Callable[[str], str | None],
    owner_email: Callable[[str], str] | None = None,
) -> None:
    global _names
    _names = NamespaceNames(label, find, owner_email)


def namespace_owner_email(key: str) -> str:
    """The email of the namespace's owner, who is told when its webhooks fail ("": none
    known)."""
    if not key or _names is None or _names.owner_email is None:
        return ""
    return _names.owner_email(key) or ""


def namespace_label(key: str) -> str:
    if not key:
        return ""
    found = _names.label(key) if _names else None
    return found or key


def find_namespace(text: str) -> str | None:
    """The key for `text`, or None when no namespace matches; without a registered owner
    of namespaces, any key is taken as it is."""
    return _names.find(text) if _names else text


# Where a webhook's owner sees it, by scope (a user's settings page, a namespace's webhook
# page), registered by the app that owns those pages; the admin's page otherwise.
_pages: dict[str, Callable[[Any], str]] = {}


def register_webhook_page(scope: str, page: Callable[[Any], str]) -> None:
    """`page(webhook) -> path`: where the owner of a webhook of `scope` sees it (the
    link in the emails about it)."""
    _pages[scope] = page


def webhook_page(webhook) -> str | None:
    """The path of the owner's page of the webhook, or None (the admin's is used)."""
    page = _pages.get(webhook.scope)
    return page(webhook) if page else None

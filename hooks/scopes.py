"""What the engine knows of namespaces: only their keys. The app that owns them registers
how to name a key and how to find one from what staff type (an id or a path), so the
admin can show "acme/ci" instead of "7" and refuse a namespace that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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

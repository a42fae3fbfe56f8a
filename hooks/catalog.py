"""The event catalog: every event type is registered once, with its scope and an example.

`emit()` refuses types that are not registered, so a typo in a source fails loudly
instead of silently reaching nobody.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SERVER = "server"
USER = "user"
NAMESPACE = "namespace"
SCOPES = (SERVER, USER, NAMESPACE)

# 'area.action', or one word as Djinn names its resource events ('variables', 'ssh_keys').
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class UnknownEventType(LookupError):
    pass


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    scopes: tuple[str, ...]
    example: dict[str, Any] = field(default_factory=dict)
    # A one-line human message for chat formats; `{payload}` fields are available.
    summary: str = ""
    # `personalise(payload, delivery) -> (sent, shown)`: the body of each delivery is
    # `sent` (e.g. with the delivery's own id or the webhook's secret added at send
    # time), history shows `shown`. Such events ignore data templates and formats.
    personalise: Callable[[dict, Any], tuple[dict, dict]] | None = None


_registry: dict[str, EventType] = {}


def register(
    name: str,
    description: str,
    *,
    scopes: tuple[str, ...] = (SERVER,),
    example: dict[str, Any] | None = None,
    summary: str = "",
    personalise: Callable[[dict, Any], tuple[dict, dict]] | None = None,
) -> EventType:
    """Register an event type. The same definition again is a no-op; another definition
    under a registered name is an error."""
    if not _NAME.match(name):
        raise ValueError(
            f"Event type {name!r} must look like 'area.action' or 'word' (lowercase letters, "
            "digits and underscores)."
        )
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"Unknown scope(s) {sorted(unknown)} for {name!r}.")
    event_type = EventType(name, description, tuple(scopes), example or {}, summary, personalise)
    if name in _registry and _registry[name] != event_type:
        raise ValueError(f"Event type {name!r} is already registered differently.")
    _registry[name] = event_type
    return event_type


def unregister(name: str) -> None:
    """For tests that register throwaway types."""
    _registry.pop(name, None)


def get(name: str) -> EventType:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownEventType(
            f"Unknown event type {name!r}; register it in hooks.catalog first."
        ) from None


def all_types() -> list[EventType]:
    return sorted(_registry.values(), key=lambda t: t.name)


def choices(scope: str | None = None) -> list[tuple[str, str]]:
    return [
        (t.name, f"{t.name} — {t.description}")
        for t in all_types()
        if scope is None or scope in t.scopes
    ]


def grouped_choices(scope: str | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """The choices grouped by source (the part before the dot: job, swarm, user, …)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, label in choices(scope):
        groups.setdefault(name.split(".", 1)[0], []).append((name, label))
    return list(groups.items())


def register_builtin() -> None:
    """Operational events of the engine itself (called from HooksConfig.ready)."""
    register(
        "webhook.test",
        "A test event sent on request to check a receiver.",
        scopes=SCOPES,
        example={"event": "test", "webhook": {"id": 1, "name": "My receiver"}},
        summary="Test event from webhookhub",
    )
    register(
        "webhook.disabled",
        "A webhook was disabled because its receiver kept failing or answered 410.",
        scopes=(SERVER,),
        example={
            "event": "webhook_disabled",
            "webhook": {"id": 7, "name": "CI", "url": "https://ci.example.com/hook"},
            "reason": "The receiver answered 410 Gone.",
        },
        summary="Webhook {webhook[name]} was disabled: {reason}",
    )

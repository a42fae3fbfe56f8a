"""The event catalog: every event type is registered once, with its scope and an example.

`emit()` refuses types that are not registered, so a typo in a source fails loudly
instead of silently reaching nobody.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hooks import process

SERVER = "server"
USER = "user"
NAMESPACE = "namespace"
SCOPES = (SERVER, USER, NAMESPACE)

# 'area.action', or one word as Djinn names its resource events ('variables', 'ssh_keys').
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class UnknownEventType(LookupError):
    pass


# An event's notification as Open WebUI words its chat notification: (title, url,
# content). Chat platforms get "{title} - {url}\n\n{content}", Open WebUI's code shape
# {"action": "chat", "message": content, "title": title, "url": url}.
ChatParts = tuple[str, str, str]


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
    # time), history shows `shown`. Such events ignore data templates and formats. An
    # event with large values kept apart is personalised twice: its whole payload for
    # `sent`, its row's (previews in their places) for `shown`.
    personalise: Callable[[dict, Any], tuple[dict, dict]] | None = None
    # Webhooks that receive only this type are another page's (route webhooks): listed
    # under this kind, and the webhook forms do not offer the type.
    kind: str = ""
    # `chat(payload) -> ChatParts`: the event is a notification carrying a result (a
    # finished job's output), which chat formats send instead of the summary, built
    # from the whole payload (large values in their places), each cut to its platform.
    chat: Callable[[dict], ChatParts] | None = None


_registry: dict[str, EventType] = {}

# Types declared at run time (staff declare them in the admin for outside producers):
# a source function reads them; each process keeps them (hooks.process) for RELOAD
# seconds, reloads at once when its own process changed them, and on a miss at most
# every MISS_RELOAD.
RELOAD, MISS_RELOAD = 5.0, 0.5
_declared_source: Callable[[], list[EventType]] | None = None


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(
            f"Event type {name!r} must look like 'area.action' or 'word' (lowercase letters, "
            "digits and underscores)."
        )


def register_event_type(
    name: str,
    description: str,
    *,
    scopes: tuple[str, ...] = (SERVER,),
    example: dict[str, Any] | None = None,
    summary: str = "",
    personalise: Callable[[dict, Any], tuple[dict, dict]] | None = None,
    kind: str = "",
    chat: Callable[[dict], ChatParts] | None = None,
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
    event_type = EventType(
        name, description, tuple(scopes), example or {}, summary, personalise, kind, chat
    )
    if name in _registry and _registry[name] != event_type:
        raise ValueError(f"Event type {name!r} is already registered differently.")
    _registry[name] = event_type
    return event_type


def unregister_event_type(name: str) -> None:
    """For tests that register throwaway types."""
    _registry.pop(name, None)


def set_declared_source(source: Callable[[], list[EventType]] | None) -> None:
    """Where types declared at run time come from (hooks' own model, set in ready())."""
    global _declared_source
    _declared_source = source
    reload_declared()


def reload_declared() -> None:
    """Forget the declared types; the next look reads them again."""
    process.current().declared_types = (float("-inf"), {})


def _declared_types(older_than: float | None = None) -> dict[str, EventType]:
    older_than = RELOAD if older_than is None else older_than
    state = process.current()
    loaded_at, declared = state.declared_types
    now = time.monotonic()
    if _declared_source is not None and now - loaded_at >= older_than:
        declared = {t.name: t for t in _declared_source() if t.name not in _registry}
        state.declared_types = (now, declared)
    return declared


def is_registered_in_code(name: str) -> bool:
    return name in _registry


def is_declared_event_type(name: str) -> bool:
    """A type declared at run time (which outside producers may post)."""
    return name in _declared_types() or name in _declared_types(MISS_RELOAD)


def get(name: str) -> EventType:
    found = _registry.get(name) or _declared_types().get(name)
    if found is None:
        found = _declared_types(MISS_RELOAD).get(name)  # declared moments ago elsewhere
    if found is None:
        raise UnknownEventType(
            f"Unknown event type {name!r}; register it in hooks.catalog or declare it in "
            "the admin first."
        )
    return found


def event_types() -> list[EventType]:
    return sorted([*_registry.values(), *_declared_types().values()], key=lambda t: t.name)


def choices(scope: str | None = None) -> list[tuple[str, str]]:
    """What a webhook form offers: a scope's types, less those another page owns (kind)."""
    return [
        (t.name, f"{t.name} — {t.description}")
        for t in event_types()
        if (scope is None or scope in t.scopes) and not t.kind
    ]


def kind_of(names: list[str]) -> str:
    """The kind of a webhook that receives only types of one kind (a route webhook), or ''."""
    kinds = {_registry[n].kind if n in _registry else "" for n in names}
    return kinds.pop() if len(kinds) == 1 else ""


def grouped_choices(scope: str | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """The choices grouped by source (the part before the dot: job, swarm, user, …)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, label in choices(scope):
        groups.setdefault(name.split(".", 1)[0], []).append((name, label))
    return list(groups.items())


def register_builtin() -> None:
    """Operational events of the engine itself (called from HooksConfig.ready)."""
    register_event_type(
        "webhook.test",
        "A test event sent on request to check a receiver.",
        scopes=SCOPES,
        example={"event": "test", "webhook": {"id": 1, "name": "My receiver"}},
        summary="Test event from webhookhub",
    )
    register_event_type(
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
    _register_operator_events()


# Events about the hub's own webhooks, for operators (server webhooks). An operator
# event about a webhook never goes to that webhook, and a delivery of one that gives up
# raises no `delivery.exhausted`: a failing alert sink cannot alert about itself in a loop.
OPERATOR_EVENTS = (
    "webhook.failing",
    "webhook.disabled",
    "webhook.recovered",
    "delivery.exhausted",
    "webhook.changed",
)
_WEBHOOK = {"id": 7, "name": "CI", "url": "https://ci.example.com/hook", "scope": "server"}


def _register_operator_events() -> None:
    register_event_type(
        "webhook.failing",
        "A webhook's last attempts all failed: it will be disabled unless it recovers.",
        scopes=(SERVER,),
        example={
            "event": "webhook_failing",
            "webhook": _WEBHOOK,
            "consecutive_failures": 5,
            "failing_since": "2026-11-02T09:30:00+00:00",
            "disabled_at_the_latest": "2026-11-07T09:30:00+00:00",
            "disabled_in_hours": 119.9,
            "forecast": "disabled in about 119.9 h unless it recovers",
            "last_status": 503,
        },
        summary="Webhook {webhook[name]} is failing ({consecutive_failures} attempts in a "
        "row); {forecast}",
    )
    register_event_type(
        "webhook.recovered",
        "A failing webhook's receiver accepted a delivery again.",
        scopes=(SERVER,),
        example={
            "event": "webhook_recovered",
            "webhook": _WEBHOOK,
            "failing_since": "2026-11-02T09:30:00+00:00",
            "failed_attempts": 12,
        },
        summary="Webhook {webhook[name]} recovered after {failed_attempts} failed attempts",
    )
    register_event_type(
        "delivery.exhausted",
        "A delivery gave up: its last attempt failed and no retry is left.",
        scopes=(SERVER,),
        example={
            "event": "delivery_exhausted",
            "webhook": _WEBHOOK,
            "delivery": {"id": "6c1f0b7e-2a43-4c55-9d8e-0f4a3b2c1d0e", "attempts": 10},
            "event_type": "job.finished",
            "last_status": 500,
            "last_error": "",
        },
        summary="A {event_type} delivery to {webhook[name]} gave up after "
        "{delivery[attempts]} attempts",
    )
    register_event_type(
        "webhook.changed",
        "A webhook was created, or its URL, secret, events, filter or active switch changed.",
        scopes=(SERVER,),
        example={
            "event": "webhook_changed",
            "webhook": _WEBHOOK,
            "created": False,
            "changed": ["url", "secret"],
            "fields": "url, secret",
            "by": {"id": 1, "username": "root"},
        },
        summary="Webhook {webhook[name]} changed by {by[username]}: {fields}",
    )

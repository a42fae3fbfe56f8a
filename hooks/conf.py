"""The one accessor for webhook settings, and the one place their defaults are defined.

`webhookhub/settings.py` reads the environment with these defaults; code reads the
values through `settings()`; `hooks.checks` reports bad values at start-up, naming the
variable. Nothing here touches Django settings at import time, so the settings module
may import it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings

VERSION = "0.1.0"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Setting name -> default. The environment variable of the same name overrides it
# (webhookhub/settings.py), except WEBHOOK_MAX_TIMEOUT, which is fixed.
SETTING_DEFAULTS: dict[str, Any] = {
    # The pumps' journals (hooks.worker.journal); blank: var/journal in the hub's folder.
    "WEBHOOK_JOURNAL_DIR": "",
    # Exempt from the SSRF guard: for webhooks staff configure (server scope) ...
    "WEBHOOK_ALLOWED_NETWORKS": (),
    # ... and for URLs users supply (their notification webhook, a job's callback URL,
    # namespace webhooks): separate, so the operator's exemption is not theirs.
    "WEBHOOK_USER_ALLOWED_NETWORKS": (),
    "WEBHOOK_TIMEOUT": 15.0,
    "WEBHOOK_CONNECT_TIMEOUT": 5.0,
    # Standard Webhooks' example schedule, about three days.
    "WEBHOOK_RETRY_SCHEDULE": (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400),
    # Blocking server hooks may wait up to 10 minutes, as SwarmUI does.
    "WEBHOOK_MAX_TIMEOUT": 600.0,
    "WEBHOOK_SEND_THREADS": 32,
    "WEBHOOK_BATCH_SIZE": 32,
    "WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT": 16,
    "WEBHOOK_PUMP_SECONDS": 30.0,
    # The largest payload an event's row keeps whole, and an outside producer may post;
    # larger payloads of the hub's own events keep their large values apart
    # (hooks.largevalues), up to the largest event as a receiver gets it.
    "WEBHOOK_MAX_PAYLOAD_BYTES": 256 * 1024,
    "WEBHOOK_MAX_EVENT_BYTES": 100 * 1024 * 1024,
    # A worker's claim on a delivery lasts this long unless the worker renews it (it
    # does, while it holds the delivery): a worker that dies gives its deliveries up
    # this soon, and the ticker hands them to another within a second.
    "WEBHOOK_CLAIM_LEASE": 25.0,
    # Its owner is warned after this many attempts in a row failed (Svix: after 4).
    "WEBHOOK_FAILING_AFTER_ATTEMPTS": 5,
    "WEBHOOK_DISABLE_AFTER_DAYS": 5.0,
    "WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES": 20,
    "WEBHOOK_HISTORY_DAYS": 30,
    # Bodies (attempts' request and response bodies, events' payloads and the large
    # values kept apart for them) expire sooner than the rest of the history; 0: they go
    # with it (hooks.tools.retention).
    "WEBHOOK_BODY_RETENTION_DAYS": 7,
    # A webhook's feed (hooks.tools.feed) hands out a delivery once it is this many
    # seconds old: a transaction that made deliveries commits within it, so a cursor
    # never passes a delivery that is not visible yet.
    "WEBHOOK_FEED_SETTLE_SECONDS": 5.0,
}
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = SETTING_DEFAULTS["WEBHOOK_RETRY_SCHEDULE"]
RESPONSE_BODY_CAP = 64 * 1024
# A namespace webhook's request waits this long unless its owner set a timeout: Djinn's
# webhook client gives up after a minute (namespace/webhook.go), so receivers built for
# it may take that long.
NAMESPACE_TIMEOUT = 60.0
# A synchronous send (`send_now`: blocking server hooks, test pings) holds its delivery
# for one (longest) request timeout and this margin; nothing renews it.
SYNC_LEASE_MARGIN = 60.0


@dataclass(frozen=True)
class HookSettings:
    allowed_networks: tuple[IPNetwork, ...]
    user_allowed_networks: tuple[IPNetwork, ...]
    timeout: float
    connect_timeout: float
    max_timeout: float
    retry_schedule: tuple[float, ...]
    send_threads: int
    batch_size: int
    claim_lease: float
    sync_lease: float
    response_body_cap: int
    max_payload_bytes: int
    max_event_bytes: int
    user_agent: str
    disable_after_days: float
    max_in_flight_per_endpoint: int
    pump_seconds: float
    disable_after_failed_deliveries: int
    history_days: int
    body_days: int
    failing_after_attempts: int
    feed_settle: float


def value(name: str) -> Any:
    """The setting as configured, or its default."""
    return getattr(django_settings, name, SETTING_DEFAULTS[name])


def exempt_networks(current: HookSettings, user_supplied: bool) -> tuple[IPNetwork, ...]:
    """The SSRF guard's exemptions for a URL staff configured, or one a user supplied."""
    return current.user_allowed_networks if user_supplied else current.allowed_networks


def parse_networks(values: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) to networks; raises ValueError naming the bad one."""
    networks = []
    for item in values:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a CIDR network ({exc})") from None
    return tuple(networks)


def settings() -> HookSettings:
    """Current settings. Cheap enough to call per delivery; tests override settings."""
    max_timeout = float(value("WEBHOOK_MAX_TIMEOUT"))
    return HookSettings(
        allowed_networks=parse_networks(value("WEBHOOK_ALLOWED_NETWORKS")),
        user_allowed_networks=parse_networks(value("WEBHOOK_USER_ALLOWED_NETWORKS")),
        timeout=float(value("WEBHOOK_TIMEOUT")),
        connect_timeout=float(value("WEBHOOK_CONNECT_TIMEOUT")),
        max_timeout=max_timeout,
        retry_schedule=tuple(float(s) for s in value("WEBHOOK_RETRY_SCHEDULE")),
        send_threads=int(value("WEBHOOK_SEND_THREADS")),
        batch_size=int(value("WEBHOOK_BATCH_SIZE")),
        claim_lease=float(value("WEBHOOK_CLAIM_LEASE")),
        sync_lease=max_timeout + SYNC_LEASE_MARGIN,
        response_body_cap=RESPONSE_BODY_CAP,
        max_payload_bytes=int(value("WEBHOOK_MAX_PAYLOAD_BYTES")),
        max_event_bytes=int(value("WEBHOOK_MAX_EVENT_BYTES")),
        user_agent=f"webhookhub/{VERSION}",
        max_in_flight_per_endpoint=int(value("WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT")),
        pump_seconds=float(value("WEBHOOK_PUMP_SECONDS")),
        disable_after_days=float(value("WEBHOOK_DISABLE_AFTER_DAYS")),
        disable_after_failed_deliveries=int(value("WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES")),
        history_days=int(value("WEBHOOK_HISTORY_DAYS")),
        body_days=int(value("WEBHOOK_BODY_RETENTION_DAYS")),
        failing_after_attempts=int(value("WEBHOOK_FAILING_AFTER_ATTEMPTS")),
        feed_settle=float(value("WEBHOOK_FEED_SETTLE_SECONDS")),
    )

"""The one accessor for webhook settings, with their defaults.

Values come from Django settings (which read the environment); `hooks.checks`
reports bad values at start-up, naming the variable.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.conf import settings

DEFAULT_RETRY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class HookSettings:
    allowed_networks: tuple[IPNetwork, ...]
    timeout: float
    connect_timeout: float
    max_timeout: float
    retry_schedule: tuple[float, ...]
    send_threads: int
    batch_size: int
    claim_lease: float
    response_body_cap: int
    max_payload_bytes: int
    sweep_seconds: float
    user_agent: str
    disable_after_days: float
    max_in_flight_per_endpoint: int
    pump_seconds: float
    disable_after_failed_deliveries: int
    history_days: int


def parse_networks(values: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) to networks; raises ValueError naming the bad one."""
    networks = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR network ({exc})") from None
    return tuple(networks)


def get() -> HookSettings:
    """Current settings. Cheap enough to call per delivery; tests override settings."""
    from hooks import __version__

    timeout = float(getattr(settings, "WEBHOOK_TIMEOUT", 15.0))
    batch = int(getattr(settings, "WEBHOOK_BATCH_SIZE", 32))
    max_timeout = float(getattr(settings, "WEBHOOK_MAX_TIMEOUT", 600.0))
    return HookSettings(
        allowed_networks=parse_networks(getattr(settings, "WEBHOOK_ALLOWED_NETWORKS", [])),
        timeout=timeout,
        connect_timeout=float(getattr(settings, "WEBHOOK_CONNECT_TIMEOUT", 5.0)),
        max_timeout=max_timeout,
        retry_schedule=tuple(
            float(s) for s in getattr(settings, "WEBHOOK_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE)
        ),
        send_threads=int(getattr(settings, "WEBHOOK_SEND_THREADS", 32)),
        batch_size=batch,
        # A claimed batch finishes within one (longest) request timeout; the lease
        # only matters when a worker dies mid-batch.
        claim_lease=max_timeout + 60,
        response_body_cap=64 * 1024,
        max_payload_bytes=int(getattr(settings, "WEBHOOK_MAX_PAYLOAD_BYTES", 256 * 1024)),
        sweep_seconds=float(getattr(settings, "WEBHOOK_SWEEP_SECONDS", 50.0)),
        user_agent=f"webhookhub/{__version__}",
        max_in_flight_per_endpoint=int(getattr(settings, "WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", 16)),
        pump_seconds=float(getattr(settings, "WEBHOOK_PUMP_SECONDS", 30.0)),
        disable_after_days=float(getattr(settings, "WEBHOOK_DISABLE_AFTER_DAYS", 5)),
        disable_after_failed_deliveries=int(
            getattr(settings, "WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES", 20)
        ),
        history_days=int(getattr(settings, "WEBHOOK_HISTORY_DAYS", 30)),
    )

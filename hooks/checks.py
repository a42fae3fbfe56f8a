"""System checks: bad webhook settings stop start-up with a message naming the variable."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from hooks.conf import parse_networks


@register()
def webhook_settings(app_configs=None, **kwargs) -> list[Error]:
    errors: list[Error] = []
    try:
        parse_networks(getattr(settings, "WEBHOOK_ALLOWED_NETWORKS", []))
    except ValueError as exc:
        errors.append(Error(f"WEBHOOK_ALLOWED_NETWORKS: {exc}.", id="hooks.E001"))
    timeout = getattr(settings, "WEBHOOK_TIMEOUT", 15.0)
    max_timeout = getattr(settings, "WEBHOOK_MAX_TIMEOUT", 600.0)
    if not 0 < timeout <= max_timeout:
        errors.append(
            Error(
                f"WEBHOOK_TIMEOUT must be between 0 and {max_timeout:g} seconds.", id="hooks.E002"
            )
        )
    schedule = getattr(settings, "WEBHOOK_RETRY_SCHEDULE", [0])
    if not schedule or any(s < 0 for s in schedule) or len(schedule) > 100:
        errors.append(
            Error(
                "WEBHOOK_RETRY_SCHEDULE must list 1 to 100 non-negative delays in seconds.",
                id="hooks.E003",
            )
        )
    for name in ("WEBHOOK_SEND_THREADS", "WEBHOOK_BATCH_SIZE"):
        if getattr(settings, name, 1) < 1:
            errors.append(Error(f"{name} must be at least 1.", id="hooks.E004"))
    return errors

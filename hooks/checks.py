"""System checks: bad webhook settings stop start-up with a message naming the variable.

Values are read through `hooks.conf.value`, so a setting left out is checked at the
same default the code uses.
"""

from __future__ import annotations

from django.core.checks import Error, register

from hooks.conf import parse_networks, value


@register()
def webhook_settings(app_configs=None, **kwargs) -> list[Error]:
    errors: list[Error] = []
    try:
        parse_networks(value("WEBHOOK_ALLOWED_NETWORKS"))
    except ValueError as exc:
        errors.append(Error(f"WEBHOOK_ALLOWED_NETWORKS: {exc}.", id="hooks.E001"))
    max_timeout = value("WEBHOOK_MAX_TIMEOUT")
    if not 0 < value("WEBHOOK_TIMEOUT") <= max_timeout:
        errors.append(
            Error(
                f"WEBHOOK_TIMEOUT must be between 0 and {max_timeout:g} seconds.", id="hooks.E002"
            )
        )
    schedule = value("WEBHOOK_RETRY_SCHEDULE")
    if not schedule or any(s < 0 for s in schedule) or len(schedule) > 100:
        errors.append(
            Error(
                "WEBHOOK_RETRY_SCHEDULE must list 1 to 100 non-negative delays in seconds.",
                id="hooks.E003",
            )
        )
    for name in ("WEBHOOK_SEND_THREADS", "WEBHOOK_BATCH_SIZE"):
        if value(name) < 1:
            errors.append(Error(f"{name} must be at least 1.", id="hooks.E004"))
    return errors

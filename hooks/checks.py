"""System checks: bad webhook settings stop start-up with a message naming the variable.

Values are read through `hooks.conf.value`, so a setting left out is checked at the
same default the code uses.
"""

from __future__ import annotations

import os

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from hooks import encryption, slots, ssrf
from hooks.conf import parse_networks, value

MIN_CLAIM_LEASE = 5.0  # shorter, and a busy worker's renewals could come too late
MAX_FEED_SETTLE = 3600.0  # longer, and a feed's reader would lag its deliveries by hours


@register()
def webhook_settings(app_configs=None, **kwargs) -> list[Error]:
    errors: list[Error] = []
    for name in ("WEBHOOK_ALLOWED_NETWORKS", "WEBHOOK_USER_ALLOWED_NETWORKS"):
        try:
            parse_networks(value(name))
        except ValueError as exc:
            errors.append(Error(f"{name}: {exc}.", id="hooks.E001"))
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
    if not isinstance(value("WEBHOOK_FAILING_AFTER_ATTEMPTS"), int) or (
        value("WEBHOOK_FAILING_AFTER_ATTEMPTS") < 0
    ):
        errors.append(
            Error(
                "WEBHOOK_FAILING_AFTER_ATTEMPTS must be a whole number, 0 or more (0: never "
                "warn that a webhook is failing).",
                id="hooks.E012",
            )
        )
    if not MIN_CLAIM_LEASE <= value("WEBHOOK_CLAIM_LEASE") <= max_timeout:
        errors.append(
            Error(
                f"WEBHOOK_CLAIM_LEASE must be between {MIN_CLAIM_LEASE:g} and {max_timeout:g} "
                "seconds (workers renew their claims every fifth of it).",
                id="hooks.E007",
            )
        )
    if not 0 <= value("WEBHOOK_FEED_SETTLE_SECONDS") <= MAX_FEED_SETTLE:
        errors.append(
            Error(
                f"WEBHOOK_FEED_SETTLE_SECONDS must be between 0 and {MAX_FEED_SETTLE:g} seconds.",
                id="hooks.E013",
            )
        )
    errors.extend(_retention_errors())
    return errors


def _retention_errors() -> list[Error]:
    """Whole days, none negative, and bodies kept no longer than the history that holds
    them (a body cannot outlive its delivery)."""
    history, body = value("WEBHOOK_HISTORY_DAYS"), value("WEBHOOK_BODY_RETENTION_DAYS")
    errors = [
        Error(f"{name} must be a whole number of days, 0 or more (0: {zero}).", id="hooks.E014")
        for name, days, zero in (
            ("WEBHOOK_HISTORY_DAYS", history, "keep the history forever"),
            ("WEBHOOK_BODY_RETENTION_DAYS", body, "bodies go with the history"),
        )
        if not isinstance(days, int) or isinstance(days, bool) or days < 0
    ]
    if not errors and history and body > history:
        errors.append(
            Error(
                f"WEBHOOK_BODY_RETENTION_DAYS ({body}) must not be longer than "
                f"WEBHOOK_HISTORY_DAYS ({history}): bodies are pruned with their history; "
                "0 keeps them as long as it.",
                id="hooks.E015",
            )
        )
    return errors


@register()
def slot_urls_from_environment(app_configs=None, **kwargs) -> list[Error]:
    """A slot's URL from the environment (WEBHOOK_URL) follows the same rules as one
    saved in the admin."""
    errors: list[Error] = []
    try:
        allowed = parse_networks(value("WEBHOOK_ALLOWED_NETWORKS"))
    except ValueError:
        return []  # reported by webhook_settings
    for slot in slots.all_slots():
        url = os.environ.get(slot.env_var, "") if slot.env_var else ""
        if not url:
            continue
        try:
            ssrf.check_target(url, allowed)
        except ssrf.UnsafeURL as exc:
            errors.append(Error(f"{slot.env_var}: {exc}", id="hooks.E005"))
    return errors


@register()
def encryption_keys(app_configs=None, **kwargs) -> list[Error]:
    try:
        encryption.cipher()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="hooks.E006")]
    return []

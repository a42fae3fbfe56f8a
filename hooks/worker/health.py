"""A webhook's health: failure counts, disabling a failing endpoint and telling its owner,
and re-enabling it. The stages in between (failing, recovered) are announced by
hooks.worker.alerts, called only when one may change."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from hooks import conf, logsafe
from hooks.models import AlertStage, Delivery, Webhook
from hooks.outbox.event import emit
from hooks.worker import alerts, rows

log = logging.getLogger("hooks.health")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    delivery_failed: bool  # the delivery ended failed for good with this attempt
    delivery: Delivery | None = None  # the delivery attempted (for `delivery.exhausted`)
    error: str = ""


def after_attempts(webhook: Webhook, outcomes: list[Outcome], now: datetime) -> None:
    """Update the failure counters after attempts (in completion order), and disable the
    webhook when a rule says so. No query when all went well and nothing was failing;
    one for failures (the counters come back with the update)."""
    last_ok = max((i for i, o in enumerate(outcomes) if o.ok), default=-1)
    failures = outcomes[last_ok + 1 :]
    for outcome in outcomes:
        if outcome.delivery_failed and outcome.delivery is not None:  # rare: it gave up
            alerts.exhausted(webhook, outcome.delivery, outcome.status, outcome.error)
    if last_ok >= 0 and (
        webhook.consecutive_failures
        or webhook.failing_since
        or webhook.consecutive_failed_deliveries
        or webhook.alert_stage == AlertStage.FAILING
    ):
        _reset(webhook, now)
    if not failures:
        return
    _count_failures(webhook, failures, now)
    if webhook.is_disabled:
        return
    current = conf.settings()
    reason = (
        "The receiver answered 410 Gone."
        if any(o.status == 410 for o in failures)
        else _rule_broken(webhook, now, current)
    )
    if reason:
        disable(webhook, reason, now)  # the disabled notice says it all: no failing one
        return
    alerts.after_failures(webhook, now, failures[-1].status, current.failing_after_attempts)


def _reset(webhook: Webhook, now: datetime) -> None:
    """A success after failures: clean counters, and `recovered` if it was failing."""
    Webhook.objects.filter(pk=webhook.pk).update(
        consecutive_failures=0, failing_since=None, consecutive_failed_deliveries=0
    )
    failing_since = webhook.failing_since
    alerts.after_success(webhook, now, failing_since)
    webhook.consecutive_failures, webhook.failing_since = 0, None
    webhook.consecutive_failed_deliveries = 0


_COUNTED = (
    "consecutive_failures", "failing_since", "consecutive_failed_deliveries", "disabled_at",
    "alert_stage",
)  # fmt: skip


@cache
def _count_sql() -> str:
    """Add to the counters and return them (the statement is the same every time)."""
    q = connection.ops.quote_name

    def col(name: str) -> str:
        return q(Webhook._meta.get_field(name).column)

    return (
        f"UPDATE {q(Webhook._meta.db_table)} SET "
        f"{col('consecutive_failures')} = {col('consecutive_failures')} + %s, "
        f"{col('failing_since')} = COALESCE({col('failing_since')}, %s), "
        f"{col('consecutive_failed_deliveries')} = {col('consecutive_failed_deliveries')} + %s "
        f"WHERE {col('id')} = %s RETURNING {', '.join(col(c) for c in _COUNTED)}"
    )


def _count_failures(webhook: Webhook, failures: list[Outcome], now: datetime) -> None:
    """Add the failures to the webhook's counters (other workers add theirs at the same
    time, so the increments happen in the database) and read the new values back into
    `webhook`: with RETURNING in the same statement where the database has it."""
    failed = sum(o.delivery_failed for o in failures)
    if not rows.can_return_from_update():
        Webhook.objects.filter(pk=webhook.pk).update(
            consecutive_failures=F("consecutive_failures") + len(failures),
            failing_since=Coalesce(F("failing_since"), Value(now)),
            consecutive_failed_deliveries=F("consecutive_failed_deliveries") + failed,
        )
        webhook.refresh_from_db(fields=list(_COUNTED))
        return
    when = Webhook._meta.get_field("failing_since").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(_count_sql(), [len(failures), when, failed, webhook.pk])
        row = cursor.fetchone()
    if row:
        for name, value in zip(_COUNTED, row, strict=True):
            setattr(webhook, name, rows.convert(Webhook, name, value))


def _rule_broken(webhook: Webhook, now: datetime, settings_: conf.HookSettings) -> str:
    days = settings_.disable_after_days
    if days and webhook.failing_since and webhook.failing_since <= now - timedelta(days=days):
        return f"Every attempt has failed since {webhook.failing_since:%Y-%m-%d %H:%M} UTC ({days:g} days or more)."
    limit = settings_.disable_after_failed_deliveries
    if limit and webhook.consecutive_failed_deliveries >= limit:
        return f"{webhook.consecutive_failed_deliveries} deliveries in a row failed after all their retries."
    return ""


def disable(webhook: Webhook, reason: str, now: datetime | None = None) -> bool:
    """Disable the webhook, announce it (`webhook.disabled`) and email its owner.

    Called inside the worker's write transaction: the announcement is an ordinary
    outbox event in that transaction, so it is sent only if the disabling commits."""
    now = now or timezone.now()
    changed = Webhook.objects.filter(pk=webhook.pk, disabled_at__isnull=True).update(
        disabled_at=now, disabled_reason=reason[:500]
    )
    if not changed:
        return False
    webhook.disabled_at, webhook.disabled_reason = now, reason[:500]
    log.warning("Webhook %s (%s) disabled: %s", webhook.pk, webhook.name, logsafe.text(reason))
    emit(
        "webhook.disabled",
        {
            "event": "webhook_disabled",
            "webhook": {"id": webhook.pk, "name": webhook.name, "url": webhook.url},
            "reason": reason,
        },
        not_to=webhook.pk,
    )
    transaction.on_commit(lambda: _email_owner(webhook, reason), robust=True)
    return True


def enable(webhook: Webhook) -> None:
    """Turn a disabled webhook back on with clean failure counters."""
    Webhook.objects.filter(pk=webhook.pk).update(
        disabled_at=None,
        disabled_reason="",
        consecutive_failures=0,
        failing_since=None,
        consecutive_failed_deliveries=0,
    )
    webhook.refresh_from_db()


def _email_owner(webhook: Webhook, reason: str) -> None:
    """The disabled email: sent even while alerts are snoozed (it needs the owner to act)."""
    alerts.email_owner(
        webhook,
        f"Webhook “{webhook.name}” was disabled",
        f"The webhook “{webhook.name}” ({webhook.url}) was disabled.\n\n"
        f"Why: {reason}\n\n"
        "Deliveries made while it is disabled are kept as skipped. Once the receiver "
        "works again, re-enable the webhook (or send a test event) and replay what it "
        "missed:",
    )

"""Telling people how a webhook is doing. An episode of failures has stages — failing
(with a forecast of when the disabling rule strikes), disabled (hooks.worker.health),
recovered — each announced once: the stage is moved with a conditional UPDATE, and only
the worker whose UPDATE moved it announces it. Its owner hears by email (unless they
snoozed the alerts), operators by events their server webhooks subscribe to; an event
about a webhook never goes to that webhook.

Nothing here runs per attempt: only when a stage changes, or a delivery gives up."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from hooks import catalog, conf, scopes
from hooks.models import AlertStage, Delivery, Scope, Webhook
from hooks.outbox.event import emit

log = logging.getLogger("hooks.alerts")

SNOOZE_DAYS = (1, 7)
NOT_FAILING = Q(disabled_at__isnull=True) & ~Q(alert_stage=AlertStage.FAILING)


def webhook_fields(webhook: Webhook) -> dict:
    """The webhook as operator events name it (never its secret or credentials)."""
    return {"id": webhook.pk, "name": webhook.name, "url": webhook.url, "scope": webhook.scope}


def disabled_at_the_latest(webhook: Webhook) -> datetime | None:
    """When the failing-for-days rule disables the webhook unless it recovers (None: the
    rule is off, or it is not failing)."""
    days = conf.settings().disable_after_days
    if not days or not webhook.failing_since:
        return None
    return webhook.failing_since + timedelta(days=days)


def hours_left(webhook: Webhook, now: datetime) -> float | None:
    latest = disabled_at_the_latest(webhook)
    if latest is None:
        return None
    return round(max((latest - now).total_seconds(), 0) / 3600, 1)


def forecast(webhook: Webhook, now: datetime) -> str:
    """When the failing webhook will be disabled, in words."""
    left = hours_left(webhook, now)
    if left is None:
        return "not disabled by time (WEBHOOK_DISABLE_AFTER_DAYS is 0)"
    return f"disabled in about {left:g} h unless it recovers"


def is_snoozed(webhook: Webhook, now: datetime) -> bool:
    until = webhook.alerts_snoozed_until
    return until is not None and until > now


def snooze_alerts(webhook: Webhook, days: int, now: datetime | None = None) -> datetime | None:
    """Silence the owner's failing and recovered emails for `days` (1 or 7; 0 ends a
    snooze). Operator events still go out: they are the operators', not the owner's."""
    if days not in (0, *SNOOZE_DAYS):
        raise ValueError(f"Snooze for {' or '.join(map(str, SNOOZE_DAYS))} days (0: stop).")
    now = now or timezone.now()
    until = now + timedelta(days=days) if days else None
    Webhook.objects.filter(pk=webhook.pk).update(alerts_snoozed_until=until)
    webhook.alerts_snoozed_until = until
    return until


def snooze_from_form(webhook: Webhook, days: str | None) -> str:
    """A page's snooze form (`days`: "1", "7" or "0") applied; the message to show.
    Raises ValueError, changing nothing, for anything else."""
    try:
        number = int(days or "")
    except ValueError:
        raise ValueError(
            "Choose to snooze the alert emails for 1 or 7 days, or end a snooze."
        ) from None
    until = snooze_alerts(webhook, number)
    if until is None:
        return "Alert emails are on."
    return f"Alert emails snoozed until {until:%Y-%m-%d %H:%M} UTC."


def _move(webhook: Webhook, stage: str, now: datetime, where: Q) -> bool:
    """Move the stage if `where` still holds; True only for the one caller that moved it
    (other workers count failures of the same webhook at the same time)."""
    moved = Webhook.objects.filter(where, pk=webhook.pk).update(
        alert_stage=stage, alert_stage_at=now
    )
    if moved:
        webhook.alert_stage, webhook.alert_stage_at = stage, now
    return bool(moved)


def after_failures(webhook: Webhook, now: datetime, last_status: int | None, limit: int) -> None:
    """Announce `failing` when the failures in a row reach `limit`
    (WEBHOOK_FAILING_AFTER_ATTEMPTS; the counters are fresh from the update that counted
    them), once per episode."""
    if not limit or webhook.consecutive_failures < limit:
        return
    if webhook.alert_stage == AlertStage.FAILING or webhook.is_disabled:
        return
    if not _move(webhook, AlertStage.FAILING, now, NOT_FAILING):
        return
    latest = disabled_at_the_latest(webhook)
    left = hours_left(webhook, now)
    payload = {
        "event": "webhook_failing",
        "webhook": webhook_fields(webhook),
        "consecutive_failures": webhook.consecutive_failures,
        "failing_since": webhook.failing_since.isoformat() if webhook.failing_since else None,
        "disabled_at_the_latest": latest.isoformat() if latest else None,
        "disabled_in_hours": left,
        "forecast": forecast(webhook, now),
        "last_status": last_status,
    }
    emit("webhook.failing", payload, not_to=webhook.pk)
    if not is_snoozed(webhook, now):
        _email_on_commit(webhook, f"Webhook “{webhook.name}” is failing",
                         _failing_text(webhook, now, last_status))  # fmt: skip


def _failing_text(webhook: Webhook, now: datetime, last_status: int | None) -> str:
    latest, left = disabled_at_the_latest(webhook), hours_left(webhook, now)
    when = "It is not disabled by time, but may be by failed deliveries."
    if latest is not None and left is not None:
        when = (f"Unless it recovers, it will be disabled in about {left:g} h "
                f"({latest:%Y-%m-%d %H:%M} UTC).")  # fmt: skip
    answer = f" (last answer: HTTP {last_status})" if last_status else ""
    return (
        f"The last {webhook.consecutive_failures} attempts to deliver to the webhook "
        f"“{webhook.name}” ({webhook.url}) all failed{answer}.\n\n{when}\n"
    )


def after_success(webhook: Webhook, now: datetime, failing_since: datetime | None) -> None:
    """Announce `recovered` for the first success after the webhook was announced failing."""
    if not _move(webhook, AlertStage.RECOVERED, now, Q(alert_stage=AlertStage.FAILING)):
        return
    payload = {
        "event": "webhook_recovered",
        "webhook": webhook_fields(webhook),
        "failing_since": failing_since.isoformat() if failing_since else None,
        "failed_attempts": webhook.consecutive_failures,
    }
    emit("webhook.recovered", payload, not_to=webhook.pk)
    if not is_snoozed(webhook, now):
        text = f"The webhook “{webhook.name}” ({webhook.url}) accepts deliveries again.\n"
        _email_on_commit(webhook, f"Webhook “{webhook.name}” recovered", text)


def exhausted(webhook: Webhook, delivery: Delivery, status: int | None, error: str) -> None:
    """Announce a delivery that gave up (`delivery.exhausted`), unless it carried an
    operator event itself (an alert sink that fails cannot feed alerts about itself) or
    a test event (its sender saw the answer)."""
    event_type = delivery.event.type if delivery.event_id else ""
    if event_type in catalog.OPERATOR_EVENTS or event_type == "webhook.test":
        return
    payload = {
        "event": "delivery_exhausted",
        "webhook": webhook_fields(webhook),
        "delivery": {"id": str(delivery.pk), "attempts": delivery.attempts},
        "event_type": event_type,
        "last_status": status,
        "last_error": (error or "")[:500],
    }
    emit("delivery.exhausted", payload, not_to=webhook.pk)


def owner_email(webhook: Webhook) -> str:
    """A user webhook's user's email, a namespace webhook's namespace owner's, or ""."""
    if webhook.owner_id and webhook.owner.email:
        return webhook.owner.email
    if webhook.scope == Scope.NAMESPACE:
        return scopes.namespace_owner_email(webhook.namespace)
    return ""


def recipients(webhook: Webhook) -> list[str]:
    """Who is told: the webhook's owner (`owner_email`), else (server webhooks, or no
    owner's email known) the site's administrators."""
    email = owner_email(webhook)
    if email:
        return [email]
    admins = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    emails = list(admins.values_list("email", flat=True))
    emails += [email for _name, email in getattr(settings, "ADMINS", [])]
    return sorted(set(emails))


def _email_on_commit(webhook: Webhook, subject: str, text: str) -> None:
    transaction.on_commit(lambda: email_owner(webhook, subject, text), robust=True)


def email_owner(webhook: Webhook, subject: str, text: str) -> None:
    """Email the webhook's owner (`recipients`), with a link to the page where they see
    it (their settings or namespace page; the admins: the admin's)."""
    to = recipients(webhook)
    if not to:
        log.warning("Nobody to tell about webhook %s: %s (no owner or admin email).",
                    webhook.pk, subject)  # fmt: skip
        return
    page = scopes.webhook_page(webhook) if owner_email(webhook) else None
    link = settings.SITE_URL + (page or reverse("admin:hooks_webhook_change", args=[webhook.pk]))
    send_mail(
        subject=f"[webhookhub] {subject}",
        message=f"{text}\n{link}\n",
        from_email=None,
        recipient_list=to,
    )

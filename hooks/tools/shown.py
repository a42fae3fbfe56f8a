"""What owners see on their pages, the same on every webhook's page (the admin's server
and route webhooks, a namespace's webhooks, a user's notification webhook): its health
stage, its secret's state, its recent deliveries, a delivery's attempts (bodies indented
for reading), and which recent events a webhook's payload filter would have let through;
a just-made secret kept, encrypted, for the one page that shows it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.html import format_html

from hooks import catalog
from hooks.encryption import seal, unseal
from hooks.models import AlertStage, Attempt, Delivery, Event, Webhook
from hooks.outbox import filters
from hooks.worker import alerts, pacing

FILTER_PREVIEW = 20
RECENT_DELIVERIES = 30
RESPONSE_PREVIEW = 60


def health_state(webhook: Webhook, now: datetime | None = None) -> str:
    """A webhook's stage as its owner sees it on every webhook page: ok, failing (and
    when it will be disabled unless it recovers), disabled, recovered; and a snooze."""
    now = now or timezone.now()
    if webhook.is_disabled:
        state = (
            f"disabled since {webhook.disabled_at:%Y-%m-%d %H:%M} UTC: {webhook.disabled_reason}"
        )
    elif webhook.consecutive_failures:
        state = f"failing: the last {webhook.consecutive_failures} attempts failed"
        left = alerts.hours_left(webhook, now)
        if webhook.alert_stage == AlertStage.FAILING and left is not None:
            state += f"; disabled in about {left:g} h unless it recovers"
    elif webhook.alert_stage == AlertStage.RECOVERED and webhook.alert_stage_at:
        state = f"ok (recovered {webhook.alert_stage_at:%Y-%m-%d %H:%M} UTC)"
    else:
        state = "ok"
    if alerts.is_snoozed(webhook, now):
        state += f"; alert emails snoozed until {webhook.alerts_snoozed_until:%Y-%m-%d %H:%M} UTC"
    return state


def secret_state(webhook: Webhook) -> str:
    """A webhook's secret as its owner may know it: set or not, and until when a replaced
    one still signs (never the value)."""
    if not webhook.secret:
        return "none: requests are not signed"
    until = webhook.replaced_secret_until()
    if until is None:
        return "set (write-only)"
    return f"set (write-only); the replaced one signs beside it until {until:%Y-%m-%d %H:%M} UTC"


def _rate(rate: float) -> str:
    return f"{rate:g} request/s" if rate == 1 else f"{rate:g} requests/s"


def pace_fields(webhook: Webhook, now: datetime | None = None) -> dict[str, Any] | None:
    """A webhook's pace as the management API shows it: the limits in force, the rate
    learned from 429/503 answers and a pause; None for a webhook that is not paced."""
    pace = pacing.shown(webhook, now)
    if pace is None:
        return None
    limits = pace.limits
    return {"rate": limits.rate, "burst": limits.burst, "max_in_flight": limits.max_in_flight,
            "learned_rate": pace.learned_rate, "paused_until": pace.paused_until}  # fmt: skip


def pace_state(webhook: Webhook, now: datetime | None = None) -> str:
    """A webhook's pace as its owner sees it on every webhook page: the limits in force
    (its own, or its chat platform's), the pace learned from its receiver's 429/503
    answers, and a pause it asked for; "" for a webhook that is not paced."""
    pace = pacing.shown(webhook, now)
    if pace is None:
        return ""
    limits, parts = pace.limits, []
    if limits.rate is not None:
        whose = "" if pace.configured else " (its platform's limit)"
        parts.append(f"at most {_rate(limits.rate)}, burst {limits.burst}{whose}")
    if limits.max_in_flight is not None:
        parts.append(f"at most {limits.max_in_flight} in flight")
    if pace.learned_rate is not None:
        parts.append(f"slowed to {_rate(pace.learned_rate)} after 429/503 answers")
    if pace.paused_until is not None:
        parts.append(
            f"paused until {pace.paused_until:%Y-%m-%d %H:%M:%S} UTC, as its receiver asked"
        )
    return "; ".join(parts)


@dataclass(frozen=True)
class DeliveryRow:
    """One line of a webhook's recent deliveries, with the page that shows it in full and,
    where its owner may, the address that sends it again."""

    delivery: Delivery
    page_url: str
    redeliver_url: str | None
    request: str  # a route event's API call ("GET /api/x"), else ""
    response: str  # the last attempt's status and the start of its body, or its error


def recent_deliveries(
    webhook: Webhook,
    page_url: Callable[[Delivery], str],
    redeliver_url: Callable[[Delivery], str] | None = None,
    limit: int = RECENT_DELIVERIES,
) -> list[DeliveryRow]:
    """The webhook's latest deliveries, newest first, as every webhook page lists them."""
    deliveries = with_last_attempt(Delivery.objects.filter(webhook=webhook))
    return delivery_rows(deliveries.order_by("-created_at")[:limit], page_url, redeliver_url)


def with_last_attempt(deliveries: QuerySet[Delivery]) -> QuerySet[Delivery]:
    """What a row shows of each delivery: its event, and its last attempt's duration and
    the start of its response."""
    last = Attempt.objects.filter(delivery=OuterRef("pk")).order_by("-number")
    return deliveries.select_related("event", "webhook").annotate(
        duration_ms=Subquery(last.values("duration_ms")[:1]),
        response_start=Subquery(last.values("response_body")[:1]),
    )


def delivery_rows(
    deliveries: Iterable[Delivery],
    page_url: Callable[[Delivery], str],
    redeliver_url: Callable[[Delivery], str] | None = None,
) -> list[DeliveryRow]:
    """The table's rows for deliveries read through with_last_attempt()."""
    return [
        DeliveryRow(
            d,
            page_url(d),
            redeliver_url(d) if _may_redeliver(d, redeliver_url) else None,
            _request_line(d.event.payload),
            _response(d),
        )
        for d in deliveries
    ]


def _may_redeliver(delivery: Delivery, redeliver_url) -> bool:
    """Finished, and its body still kept (an expired one has nothing to send)."""
    return (
        bool(redeliver_url) and delivery.status != "pending" and not delivery.event.body_expired_at
    )


def _request_line(payload) -> str:
    request = payload.get("request") if isinstance(payload, dict) else None
    if not isinstance(request, dict):
        return ""
    return f"{str(request.get('method', '')).upper()} {request.get('url', '')}".strip()


def _response(delivery: Delivery) -> str:
    if delivery.last_response_status is None:
        return delivery.last_error or ""
    start = " ".join((delivery.response_start or "").split())[:RESPONSE_PREVIEW]
    return f"{delivery.last_response_status} {start}".strip()


def keep_shown_once(session, scope: str, pk: int, secret: str) -> None:
    """Keep a just-made secret (or token) for the page that shows it once, after the
    redirect: in the server-side session, encrypted, under a key of its own page's
    (`new_secret:<scope>:<pk>`), so no cookie carries it, a copy of the session table
    does not reveal it, and another page never shows it."""
    session[_shown_key(scope, pk)] = seal(secret)


def take_shown_once(session, scope: str, pk: int) -> str | None:
    """The secret kept for this page, removed from the session as it is read."""
    sealed = session.pop(_shown_key(scope, pk), None)
    return unseal(sealed) if sealed else None


def _shown_key(scope: str, pk: int) -> str:
    return f"new_secret:{scope}:{pk}"


def secret_shown_once(webhook_name: str, secret: str) -> str:
    """The message that shows a webhook's signing secret just made, this once."""
    return value_shown_once(
        "Signing secret of", webhook_name, secret,
        "The replaced one, if any, keeps signing beside it for 24 hours: update the "
        "receiver within a day.",
    )  # fmt: skip


def value_shown_once(what: str, name: str, value: str, then: str) -> str:
    """The message that shows a secret or key just made (`what` “name”), this once, with a
    Copy button (the hub's copy.js) and what to do with it (`then`)."""
    return format_html(
        "{} “{}”, shown this once: <code id='shown-secret'>{}</code> "
        "<button type='button' class='button' data-copy='shown-secret'>Copy</button> {}",
        what, name, value, then,
    )  # fmt: skip


def readable(body: str) -> str:
    """A JSON body indented for reading; anything else as it was."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def delivery_attempts(delivery: Delivery) -> list[Attempt]:
    """Newest first, each with `shown_request` and `shown_response` (headers as recorded:
    credentials were masked when the attempt was stored), and `body_expired_at`: when
    their bodies expired (the pages say so instead of showing them empty), or None."""
    attempts = list(delivery.attempt_set.order_by("-number"))
    expired = delivery.event.body_expired_at
    for attempt in attempts:
        attempt.body_expired_at = expired
        attempt.shown_request = readable(attempt.request_body)
        attempt.shown_response = readable(attempt.response_body)
    return attempts


def recent_events(webhook: Webhook, count: int) -> list[Event]:
    """The latest events this webhook subscribes to and would have been offered: of its
    scope's types, and its user's or namespace's own."""
    types = [t.name for t in catalog.event_types()
             if webhook.scope in t.scopes and webhook.subscribes_to(t.name)]  # fmt: skip
    events = Event.objects.filter(type__in=types)
    if webhook.scope == "user":
        events = events.filter(user=webhook.owner_id)
    elif webhook.scope == "namespace":
        events = events.filter(namespace=webhook.namespace)
    return list(events.order_by("-created_at")[:count])


def filter_preview(webhook: Webhook, count: int = FILTER_PREVIEW) -> list[tuple[Event, bool]]:
    """The last `count` events it subscribes to, newest first, each with whether its
    filter lets it through ([] without a filter)."""
    if webhook.payload_filter is None:
        return []
    return [(e, filters.matches(webhook.payload_filter, e.payload))
            for e in recent_events(webhook, count)]  # fmt: skip

"""What the owners' pages share (a user's settings and jobs, a namespace's webhooks)."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest

import hooks
from hooks.models import Delivery


def redeliver(request: HttpRequest, delivery: Delivery, what: str = "It") -> bool:
    """One more attempt on `delivery` (the same webhook-id), and a message that says
    whether it was queued: a delivery being sent right now is left alone, and one whose
    body expired cannot be sent again."""
    expired = hooks.body_expired(delivery)
    if expired:
        messages.error(request, expired)
        return False
    with transaction.atomic():
        queued = hooks.redeliver(Delivery.objects.filter(pk=delivery.pk))
    return _told(request, queued, f"{what} is queued for redelivery (the same webhook-id).",
                 "It is being sent right now; look again in a moment.")  # fmt: skip


def stop_retrying(request: HttpRequest, delivery: Delivery, what: str = "It") -> bool:
    """No more attempts on a pending `delivery`, and a message that says so."""
    stopped = hooks.stop_retrying(Delivery.objects.filter(pk=delivery.pk))
    return _told(request, stopped, f"{what} will not be retried; Redeliver sends it again.",
                 "It is not waiting for a retry (sent, or being sent right now).")  # fmt: skip


def _told(request: HttpRequest, done: int, success: str, failure: str) -> bool:
    if done:
        messages.success(request, success)
    else:
        messages.error(request, failure)
    return bool(done)


def retry_search(request: HttpRequest, base) -> tuple[object, bool]:
    """ "Send every matching delivery again" on an owner's page: a GET counts (nothing is
    sent), a POST carrying the count shown sends at most that many again (the same
    webhook-ids). Returns the plan (hooks.retry_search) and whether it was sent, with a
    message saying how many were queued."""
    posted = request.method == "POST"
    plan = hooks.retry_search(request.POST if posted else request.GET, base, confirm=posted)
    if plan.queued is None:
        return plan, False
    left = (plan.count or 0) - plan.queued
    busy = f" ({left} being sent right now were left alone)" if left > 0 else ""
    messages.success(request, f"{plan.queued} deliver{'y' if plan.queued == 1 else 'ies'} "
                              f"queued to be sent again, the same webhook-ids{busy}.")  # fmt: skip
    return plan, True

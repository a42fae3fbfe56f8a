"""One delivery attempt, top to bottom: build the request → send it through the SSRF
guard → record the attempt → decide the delivery's next step.

`attempt()` is the first half (no database, so it runs on a sender thread);
`recording.write()` the second (in a write transaction, for many attempts at once).
`deliver()` is the whole path in one place; the pump runs the same two halves, only
scheduling them (many in flight, recorded in batches with its next claim).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from queue import SimpleQueue

from django.utils import timezone

from hooks import conf
from hooks.models import Attempt, Delivery
from hooks.outgoing import redirects, transport
from hooks.outgoing.request import build
from hooks.worker import claims, recording, threads
from hooks.worker.recording import Sent

log = logging.getLogger("hooks.attempt")


def send(request: transport.OutgoingRequest, settings: conf.HookSettings) -> transport.Result:
    """POST through the SSRF guard (checked again at every attempt, and at every redirect
    a webhook follows); never raises."""
    allowed = conf.exempt_networks(settings, request.user_supplied)
    result = transport.send(request, allowed=allowed, body_cap=settings.response_body_cap)
    status = result.status
    if status is not None and 300 <= status < 400:  # redirects.is_redirect, inline: hot path
        return redirects.follow_up(request, result, allowed, settings.response_body_cap)
    return result


Sender = Callable[[transport.OutgoingRequest], transport.Result]


def attempt(
    delivery: Delivery,
    token: uuid.UUID,
    settings: conf.HookSettings,
    sender: Sender | None = None,
) -> Sent:
    """Build the request and send it (with `sender`, by default `send`). A request that
    cannot be built (a bad stored template or secret) is a failed attempt, not an
    exception that sinks the batch."""
    now = timezone.now()
    try:
        request = build(delivery, settings, now)
    except Exception as exc:
        log.exception("Could not build delivery %s", delivery.pk)
        empty = transport.OutgoingRequest(delivery.url, {}, b"", 0, 0)
        failed = transport.Result(error=f"Could not build the request: {exc}", started_at=now)
        return Sent(delivery, token, empty, failed, built=False)
    result = sender(request) if sender else send(request, settings)
    if delivery.success_status is not None:
        judged_by(delivery.success_status, result)
    return Sent(delivery, token, request, result)


def judged_by(status: int, result: transport.Result) -> None:
    """A delivery that succeeds on `status` alone (RunPod's callbacks: 200): another 2xx
    is a failed attempt, whose error says why."""
    result.success_status = status
    if result.status is not None and not result.ok and 200 <= result.status < 300:
        result.error = result.error or (
            f"HTTP {result.status}: this delivery succeeds on HTTP {status} alone "
            "(RunPod's rule for job callbacks)."
        )


def deliver(token: uuid.UUID, deliveries: list[Delivery]) -> list[Attempt]:
    """Attempt claimed deliveries now (concurrently on the sender threads), then record
    the attempts and decide each delivery's next step, in one transaction."""
    if not deliveries:
        return []
    settings = conf.settings()
    if len(deliveries) == 1:
        sent = [attempt(deliveries[0], token, settings)]
    else:
        pool, landed = threads.senders(settings.send_threads), SimpleQueue()
        for d in deliveries:
            pool.submit(attempt, d, token, settings, landed=landed)
        sent = [landed.get().result() for _ in deliveries]  # in the order they finished
    return recording.record(sent)


def deliver_due(limit: int | None = None) -> int:
    """Claim and deliver whatever is due now, in this process (tests and tools); returns
    how many attempts were made."""
    settings = conf.settings()
    token, batch = claims.claim(None, limit or settings.batch_size, settings.sync_lease)
    return len(deliver(token, batch))

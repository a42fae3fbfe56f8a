"""One delivery attempt, top to bottom: build the request → guard and send → record
the attempt → decide the next step. Batches send concurrently; records are
written by the calling thread."""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.db import transaction
from django.utils import timezone

from hooks import conf, formats, health, retry, templating, transport
from hooks.models import Attempt, BodyFormat, Delivery, Webhook

log = logging.getLogger("hooks.delivery")

MASK = "********"
Status = Delivery.Status
ALWAYS_MASKED = {"authorization", "proxy-authorization", "cookie"}


# --- build ------------------------------------------------------------------


def encode_json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def body_for(delivery: Delivery) -> bytes:
    """The webhook's data template filled from the event, a chat message, or the payload."""
    event = delivery.event
    payload = event.payload if isinstance(event.payload, dict) else {}
    webhook = delivery.webhook
    template = webhook.data_template.strip() if webhook else ""
    if template:
        values = templating.flatten(payload)
        values.update(
            event_type=event.type, event_id=str(event.id), timestamp=event.created_at.isoformat()
        )
        return templating.render(template, values).encode()
    fmt = formats.effective(webhook.format, webhook.url) if webhook else BodyFormat.JSON
    if fmt != BodyFormat.JSON:
        return encode_json(formats.chat_body(fmt, formats.message(event.type, payload)))
    return encode_json(event.payload)


def build(
    delivery: Delivery, settings: conf.HookSettings, now: datetime
) -> transport.OutgoingRequest:
    from hooks import signing

    webhook: Webhook | None = delivery.webhook
    body = body_for(delivery)
    timestamp = int(now.timestamp())
    headers: dict[str, str] = dict(webhook.headers) if webhook else {}
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": settings.user_agent,
            "webhook-id": str(delivery.id),
            "webhook-timestamp": str(timestamp),
            "X-Webhookhub-Event": delivery.event.type,
        }
    )
    active_secrets = webhook.signing_secrets(now) if webhook else []
    if not webhook and delivery.target_secret:
        active_secrets = [delivery.target_secret]
    if active_secrets:
        headers["webhook-signature"] = signing.signature_header(
            active_secrets, str(delivery.id), timestamp, body
        )
    if webhook:
        headers["X-Webhookhub-Hook"] = str(webhook.pk)
        if active_secrets and webhook.github_signature:
            headers["X-Hub-Signature-256"] = signing.github_signature(webhook.secret, body)
        if webhook.basic_auth_username:
            token = f"{webhook.basic_auth_username}:{webhook.basic_auth_password}"
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
    timeout = (
        min(webhook.timeout or settings.timeout, settings.max_timeout)
        if webhook
        else settings.timeout
    )
    return transport.OutgoingRequest(
        url=delivery.url,
        headers=headers,
        body=body,
        timeout=timeout,
        connect_timeout=min(settings.connect_timeout, timeout),
        verify_tls=webhook.verify_tls if webhook else True,
    )


def masked(headers: dict[str, str], webhook: Webhook | None) -> dict[str, str]:
    """Request headers as stored and shown: credentials and custom values hidden."""
    secret_names = ALWAYS_MASKED | {n.lower() for n in (webhook.headers if webhook else {})}
    return {k: (MASK if k.lower() in secret_names else v) for k, v in headers.items()}


# --- record and decide ------------------------------------------------------


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _next_step(delivery: Delivery, result: transport.Result, settings, now) -> dict:
    """The delivery's new state after this attempt."""
    if result.ok:
        return {"status": Status.SUCCEEDED, "completed_at": now, "next_attempt_at": None}
    if result.status == 410:
        return {"status": Status.FAILED, "completed_at": now, "next_attempt_at": None}
    retry_after = None
    if result.status in (429, 503):
        retry_after = retry.parse_retry_after(result.headers.get("Retry-After"), now)
    next_at = None
    if delivery.attempts < delivery.max_attempts:
        schedule = tuple(delivery.retry_schedule or settings.retry_schedule)
        next_at = retry.next_attempt_at(delivery.attempts, schedule, retry_after, now)
    if next_at is None:
        return {"status": Status.FAILED, "completed_at": now, "next_attempt_at": None}
    return {"status": Status.PENDING, "next_attempt_at": next_at}


@dataclass
class Sent:
    """One finished attempt, waiting to be recorded."""

    delivery: Delivery
    token: uuid.UUID
    request: transport.OutgoingRequest
    result: transport.Result


def _attempt_row(sent: Sent) -> Attempt:
    d, request, result = sent.delivery, sent.request, sent.result
    return Attempt(
        delivery=d,
        number=d.attempts,
        trigger=Attempt.Trigger.MANUAL if d.manual else Attempt.Trigger.AUTOMATIC,
        started_at=result.started_at or timezone.now(),
        duration_ms=round(result.duration_ms, 2),
        url=request.url,
        request_headers=masked(request.headers, d.webhook),
        request_body=_text(request.body),
        response_status=result.status,
        response_headers=result.headers,
        response_body=_text(result.body),
        error=result.error,
        succeeded=result.ok,
    )


@dataclass
class Recorded:
    """Attempts written and deliveries moved on; what is left to do with them."""

    batch: list[Sent]
    attempts: list[Attempt]
    outcomes: dict[int, tuple[Webhook, list[health.Outcome]]]
    now: datetime

    def update_health(self) -> None:
        """Failure counters and disabling. Webhook rows are shared by every worker: they
        are locked in one order (by id), so two workers cannot deadlock, and best as the
        last thing before the commit, so the others wait on them the least."""
        for webhook_id in sorted(self.outcomes):
            webhook, outcomes = self.outcomes[webhook_id]
            health.after_attempts(webhook, outcomes, self.now)

    def log_failures(self) -> None:
        for sent, attempt in zip(self.batch, self.attempts, strict=True):
            if not sent.result.ok:
                log.info(
                    "Delivery %s attempt %s failed: %s",
                    sent.delivery.pk,
                    attempt.number,
                    sent.result.error or f"HTTP {sent.result.status}",
                )


def write_records(batch: list[Sent]) -> Recorded:
    """Write the attempts and move each delivery on (if this worker still holds it): one
    INSERT for the attempts, one UPDATE per group of deliveries that end alike, one per
    retried delivery. Run inside the caller's transaction; health is left to the caller."""
    if not batch:
        return Recorded([], [], {}, timezone.now())
    settings = conf.get()
    now = timezone.now()
    attempts = [_attempt_row(sent) for sent in batch]
    finished: dict[tuple, list] = defaultdict(list)
    retried: list[tuple[Sent, dict]] = []
    outcomes: dict[int, tuple[Webhook, list[health.Outcome]]] = {}
    for sent in batch:
        step = _next_step(sent.delivery, sent.result, settings, now)
        result = sent.result
        if step["status"] == Status.PENDING:
            retried.append((sent, step))
        else:
            finished[(sent.token, step["status"], result.status, result.error)].append(
                sent.delivery.pk
            )
        if sent.delivery.webhook_id:
            webhook = sent.delivery.webhook
            outcome = health.Outcome(result.ok, result.status, step["status"] == Status.FAILED)
            outcomes.setdefault(webhook.pk, (webhook, []))[1].append(outcome)
    released = {"claim_token": None, "claimed_until": None, "manual": False}
    Attempt.objects.bulk_create(attempts)
    for (token, status, code, error), pks in finished.items():
        Delivery.objects.filter(pk__in=pks, claim_token=token).update(
            status=status, completed_at=now, next_attempt_at=None,
            last_response_status=code, last_error=error, **released,
        )  # fmt: skip
    for sent, step in retried:
        Delivery.objects.filter(pk=sent.delivery.pk, claim_token=sent.token).update(
            last_response_status=sent.result.status, last_error=sent.result.error,
            **step, **released,
        )  # fmt: skip
    return Recorded(batch, attempts, outcomes, now)


def record_many(batch: list[Sent]) -> list[Attempt]:
    """Record finished attempts and update the webhooks' health, in one transaction."""
    if not batch:
        return []
    with transaction.atomic(savepoint=False):
        recorded = write_records(batch)
        recorded.update_health()
    recorded.log_failures()
    return recorded.attempts


def record(
    delivery: Delivery,
    token: uuid.UUID,
    request: transport.OutgoingRequest,
    result: transport.Result,
) -> Attempt:
    return record_many([Sent(delivery, token, request, result)])[0]


def prepare(
    deliveries: list[Delivery], token: uuid.UUID, settings: conf.HookSettings, now: datetime
) -> tuple[list[tuple[Delivery, transport.OutgoingRequest]], list[Sent]]:
    """Requests for claimed deliveries; one that cannot be built is a failed attempt."""
    ready, broken = [], []
    for d in deliveries:
        try:
            ready.append((d, build(d, settings, now)))
        except Exception as exc:  # a bad stored template or secret must not sink the batch
            log.exception("Could not build delivery %s", d.pk)
            request = transport.OutgoingRequest(d.url, {}, b"", 0, 0)
            error = f"Could not build the request: {exc}"
            broken.append(Sent(d, token, request, transport.Result(error=error, started_at=now)))
    return ready, broken


# --- batches ----------------------------------------------------------------

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def stall_reserve(threads: int) -> int:
    """Sender threads kept apart for endpoints that stall (no answer), so that they do
    not take threads from the healthy ones."""
    return max(1, threads // 4)


def executor(threads: int) -> ThreadPoolExecutor:
    """The process's sender threads (created after django-q2 forks its workers):
    `threads` for endpoints that answer, plus the reserve for those that stall."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=threads + stall_reserve(threads), thread_name_prefix="hooks-send"
            )
        return _executor


def run(token: uuid.UUID, deliveries: list[Delivery]) -> list[Attempt]:
    """Send claimed deliveries concurrently, then record them together."""
    if not deliveries:
        return []
    settings = conf.get()
    ready, sent = prepare(deliveries, token, settings, timezone.now())
    send = partial(
        transport.send, allowed=settings.allowed_networks, body_cap=settings.response_body_cap
    )
    if len(ready) == 1:
        d, request = ready[0]
        sent.append(Sent(d, token, request, send(request)))
    elif ready:
        pool = executor(settings.send_threads)
        futures: dict[Future, tuple] = {
            pool.submit(send, request): (d, request) for d, request in ready
        }
        for future in as_completed(futures):
            d, request = futures[future]
            sent.append(Sent(d, token, request, future.result()))
    return record_many(sent)

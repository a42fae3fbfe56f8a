"""One delivery attempt, top to bottom: build the request → guard and send → record
the attempt → decide the next step. Batches send concurrently; records are
written by the calling thread."""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import datetime

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
    if webhook:
        headers["X-Webhookhub-Hook"] = str(webhook.pk)
        active_secrets = webhook.signing_secrets(now)
        if active_secrets:
            headers["webhook-signature"] = signing.signature_header(
                active_secrets, str(delivery.id), timestamp, body
            )
            if webhook.github_signature:
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
        next_at = retry.next_attempt_at(
            delivery.attempts, settings.retry_schedule, retry_after, now
        )
    if next_at is None:
        return {"status": Status.FAILED, "completed_at": now, "next_attempt_at": None}
    return {"status": Status.PENDING, "next_attempt_at": next_at}


def record(
    delivery: Delivery,
    token: uuid.UUID,
    request: transport.OutgoingRequest,
    result: transport.Result,
    started_at: datetime,
) -> Attempt:
    """Write the attempt and move the delivery on, if this worker still holds it."""
    settings = conf.get()
    now = timezone.now()
    step = _next_step(delivery, result, settings, now)
    with transaction.atomic():
        attempt = Attempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            trigger=Attempt.Trigger.MANUAL if delivery.manual else Attempt.Trigger.AUTOMATIC,
            started_at=started_at,
            duration_ms=round(result.duration_ms, 2),
            url=request.url,
            request_headers=masked(request.headers, delivery.webhook),
            request_body=_text(request.body),
            response_status=result.status,
            response_headers=result.headers,
            response_body=_text(result.body),
            error=result.error,
            succeeded=result.ok,
        )
        Delivery.objects.filter(pk=delivery.pk, claim_token=token).update(
            claim_token=None,
            claimed_until=None,
            manual=False,
            last_response_status=result.status,
            last_error=result.error,
            **step,
        )
        if delivery.webhook_id:
            health.after_attempt(delivery.webhook, result.ok, result.status, step["status"], now)
    if not result.ok:
        log.info(
            "Delivery %s attempt %s failed: %s",
            delivery.pk,
            attempt.number,
            result.error or f"HTTP {result.status}",
        )
    return attempt


# --- batches ----------------------------------------------------------------

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hooks-send")
        return _executor


def run(token: uuid.UUID, deliveries: list[Delivery]) -> list[Attempt]:
    """Send claimed deliveries concurrently and record each as it completes."""
    if not deliveries:
        return []
    settings = conf.get()
    now = timezone.now()
    requests, attempts = {}, []
    for d in list(deliveries):
        try:
            requests[d.pk] = build(d, settings, now)
        except Exception as exc:  # a bad stored template or secret must not sink the batch
            log.exception("Could not build delivery %s", d.pk)
            request = transport.OutgoingRequest(d.url, {}, b"", 0, 0)
            attempts.append(
                record(
                    d,
                    token,
                    request,
                    transport.Result(error=f"Could not build the request: {exc}"),
                    now,
                )
            )
            deliveries.remove(d)
    if not deliveries:
        return attempts
    if len(deliveries) == 1:
        d = deliveries[0]
        result = transport.send(
            requests[d.pk], settings.allowed_networks, settings.response_body_cap
        )
        return attempts + [record(d, token, requests[d.pk], result, now)]
    executor = _pool(settings.send_threads)
    futures: dict[Future, Delivery] = {
        executor.submit(
            transport.send, requests[d.pk], settings.allowed_networks, settings.response_body_cap
        ): d
        for d in deliveries
    }
    for future in as_completed(futures):
        d = futures[future]
        attempts.append(record(d, token, requests[d.pk], future.result(), now))
    return attempts

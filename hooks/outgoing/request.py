"""The request for one attempt: body, Standard Webhooks headers and signatures, basic
auth and the webhook's own headers, the timeout; and the same headers as stored and
shown, with credentials masked."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime

from hooks.conf import NAMESPACE_TIMEOUT, HookSettings
from hooks.models import Delivery, Scope, Webhook
from hooks.outgoing import images, signing
from hooks.outgoing.body import JSON, Body, Fetcher, body_for
from hooks.outgoing.redirects import MAX_REDIRECTS
from hooks.outgoing.transport import OutgoingRequest

MASK = "********"
DJINN_CONTENT_TYPE = "application/json; charset=utf-8"
ALWAYS_MASKED = {"authorization", "proxy-authorization", "cookie"}
SUBJECT = "X-Webhookhub-Subject"
SEQUENCE = "X-Webhookhub-Sequence"


def build(delivery: Delivery, settings: HookSettings, now: datetime) -> OutgoingRequest:
    """The signed request for `delivery` at `now`. A delivery without a webhook (a job's
    callback URL) is signed with the secrets of the webhook it names in `signed_by`
    (loaded with it by the claim), when it names one."""
    webhook: Webhook | None = delivery.webhook
    timeout = settings.timeout
    if webhook:
        timeout = min(webhook.timeout or default_timeout(webhook, settings), settings.max_timeout)
    body = sent_body(delivery, lambda url: images.fetch_for_upload(url, settings, timeout))
    content = body.content
    headers = headers_for(delivery, body, settings, now)
    return OutgoingRequest(
        url=delivery.url,
        headers=headers,
        body=content,
        shown_body=body.shown,
        timeout=timeout,
        connect_timeout=min(settings.connect_timeout, timeout),
        verify_tls=webhook.verify_tls if webhook else True,
        user_supplied=user_supplied(delivery),
        max_redirects=MAX_REDIRECTS if webhook and webhook.follow_redirects else 0,
    )


def sent_body(delivery: Delivery, fetch: Fetcher | None = None) -> Body:
    """The body as the receiver gets it (`body_for`, then as Djinn sends it for a
    webhook with Djinn headers)."""
    body = body_for(delivery, fetch)
    webhook = delivery.webhook
    if webhook and webhook.djinn_headers and body.content_type == JSON:
        return as_djinn_sends(body)
    return body


def headers_for(
    delivery: Delivery, body: Body, settings: HookSettings, now: datetime
) -> dict[str, str]:
    """Every header of the request that sends `body` at `now`: the webhook's own
    headers, the Standard Webhooks headers signed with its active secrets, the optional
    GitHub and Djinn signatures and basic auth."""
    webhook: Webhook | None = delivery.webhook
    content = body.content
    timestamp = int(now.timestamp())
    headers: dict[str, str] = dict(webhook.headers) if webhook else {}
    headers.update(
        {
            "Content-Type": body.content_type,
            "User-Agent": settings.user_agent,
            "webhook-id": str(delivery.id),
            "webhook-timestamp": str(timestamp),
            "X-Webhookhub-Event": delivery.event.type,
        }
    )
    if delivery.event.subject:  # what the event is about, and its place among its events
        headers[SUBJECT] = delivery.event.subject
        headers[SEQUENCE] = str(delivery.event.sequence)
    signer = webhook or (delivery.signed_by if delivery.signed_by_id else None)
    active_secrets = signer.signing_secrets(now) if signer else []
    if active_secrets:
        headers["webhook-signature"] = signing.signature_header(
            active_secrets, str(delivery.id), timestamp, content
        )
    if webhook:
        headers["X-Webhookhub-Hook"] = str(webhook.pk)
        if active_secrets and webhook.github_signature:
            headers["X-Hub-Signature-256"] = signing.github_signature(webhook.secret, content)
        if webhook.djinn_headers:
            headers.update(djinn_headers(webhook, delivery.event.type, content))
        if webhook.basic_auth_username:
            token = f"{webhook.basic_auth_username}:{webhook.basic_auth_password}"
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
    return headers


def default_timeout(webhook: Webhook, settings: HookSettings) -> float:
    """A webhook's timeout when it sets none: a namespace webhook waits a minute, as
    Djinn's; any other WEBHOOK_TIMEOUT."""
    return NAMESPACE_TIMEOUT if webhook.scope == Scope.NAMESPACE else settings.timeout


def as_djinn_sends(body: Body) -> Body:
    """A JSON body as Djinn's webhooks send it: Go's json.Encoder ends it with a newline,
    and the signatures are made over these bytes, newline included."""
    content = body.content if body.content.endswith(b"\n") else body.content + b"\n"
    return replace(body, content=content, content_type=DJINN_CONTENT_TYPE)


def djinn_headers(webhook: Webhook, event_type: str, content: bytes) -> dict[str, str]:
    """Djinn CI's own headers (namespace/webhook.go): its user agent, `Accept: */*`, the
    event, the hook's id, and, when the webhook has a secret, `sha256=<hex HMAC(secret,
    body)>`."""
    headers = {
        "Accept": "*/*",
        "User-Agent": "Djinn-CI-Hook",
        "X-Djinn-CI-Event": event_type,
        "X-Djinn-CI-Hook-ID": str(webhook.pk),
    }
    if webhook.secret:
        headers["X-Djinn-CI-Signature"] = signing.github_signature(webhook.secret, content)
    return headers


def user_supplied(delivery: Delivery) -> bool:
    """A URL a user gave (a user or namespace webhook, a job's callback), as opposed to
    a server webhook staff configured."""
    webhook = delivery.webhook
    return webhook is None or webhook.scope != Scope.SERVER


def _credential_names(webhook: Webhook | None) -> set[str]:
    return ALWAYS_MASKED | {n.lower() for n in (webhook.headers if webhook else {})}


def masked(headers: dict[str, str], webhook: Webhook | None) -> dict[str, str]:
    """Request headers as stored and shown: credentials and custom values hidden."""
    secret_names = _credential_names(webhook)
    return {k: (MASK if k.lower() in secret_names else v) for k, v in headers.items()}


def without_credentials(headers: dict[str, str], webhook: Webhook | None) -> dict[str, str]:
    """Request headers to send elsewhere (a feed's reader forwarding a delivery): the
    credentials and custom headers the owner gave for the webhook's own receiver left
    out, not masked (a placeholder would be sent as a value)."""
    secret_names = _credential_names(webhook)
    return {k: v for k, v in headers.items() if k.lower() not in secret_names}

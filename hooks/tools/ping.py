"""Test pings: a `webhook.test` event sent synchronously, with the receiver's answer."""

from __future__ import annotations

from dataclasses import dataclass

from hooks.models import Attempt, Webhook
from hooks.worker import health
from hooks.worker.send_now import send_now

PREVIEW_LINES = 5
PREVIEW_CHARS = 500


@dataclass
class PingResult:
    attempt: Attempt
    reenabled: bool

    @property
    def ok(self) -> bool:
        return self.attempt.succeeded

    @property
    def body_preview(self) -> str:
        lines = self.attempt.response_body.splitlines()[:PREVIEW_LINES]
        return "\n".join(lines)[:PREVIEW_CHARS]

    def summary(self) -> str:
        a = self.attempt
        outcome = f"HTTP {a.response_status}" if a.response_status else a.error
        return f"{outcome} in {a.duration_ms:.0f} ms"


def send_test(webhook: Webhook) -> PingResult:
    """Send a test event now; a success re-enables a disabled webhook."""
    payload = {"event": "test", "webhook": {"id": webhook.pk, "name": webhook.name}}
    [attempt] = send_now("webhook.test", payload, webhooks=[webhook])
    reenabled = False
    if attempt.succeeded and webhook.is_disabled:
        health.enable(webhook)
        reenabled = True
    return PingResult(attempt, reenabled)

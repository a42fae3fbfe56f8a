"""What the API keeps: the first answer to each Idempotency-Key, for KEPT_FOR."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotencyKey(models.Model):
    """A key an API caller sent with a write, and the answer it got: the same key again
    (from the same account, with the same body) gets that answer and writes nothing."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request body.")
    status = models.PositiveSmallIntegerField()
    answer = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")
        ]

    def __str__(self) -> str:
        return self.key


class RateWindow(models.Model):
    """How many events a token posted in one minute (api/ratelimit.py; without Redis).
    A token's older windows are deleted as its next one opens."""

    token = models.ForeignKey("accounts.ApiToken", on_delete=models.CASCADE)
    window = models.BigIntegerField(help_text="Minutes since the epoch.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "window"], name="rate_window_per_token")
        ]

    def __str__(self) -> str:
        return f"{self.count} posts in minute {self.window}"

"""Route events (APIO): an HTTP method and a path pattern; route webhooks listen to them;
and the audit of every change to either."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from hooks.models import Webhook

ANY = "*"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class RouteEvent(models.Model):
    label = models.CharField(max_length=100, unique=True)
    method = models.CharField(
        max_length=8,
        choices=[(ANY, "Any method"), *[(m, m) for m in METHODS]],
        default=ANY,
    )
    pattern = models.CharField(
        "path pattern",
        max_length=500,
        help_text="A regular expression searched in the request path (e.g. ^/v2/echo/run$); "
        "anchor it with ^ and $ to match the whole path.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.method} {self.pattern})"


class RouteWebhook(models.Model):
    """The route side of an engine webhook: which route events it listens to."""

    webhook = models.OneToOneField(
        Webhook, on_delete=models.CASCADE, primary_key=True, related_name="route"
    )
    events = models.ManyToManyField(RouteEvent, related_name="webhooks", blank=True)

    class Meta:
        verbose_name = "route webhook"

    def __str__(self) -> str:
        return self.webhook.name


class AuditRecord(models.Model):
    """Who changed a route event or route webhook, when, and what (secrets as 'changed')."""

    class Action(models.TextChoices):
        CREATED = "created"
        CHANGED = "changed"
        DELETED = "deleted"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=200, help_text="Who, as it was at the time.")
    kind = models.CharField(max_length=20)  # "route event" | "route webhook"
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    action = models.CharField(max_length=8, choices=Action.choices)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.kind} {self.object_repr}"

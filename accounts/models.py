"""Users (email unique, a display name), their open pages (presence), API tokens, and
the account settings the admin can switch."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

TOKEN_PREFIX = "whk_"


class User(AbstractUser):
    name = models.CharField(max_length=150, blank=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(
                Lower("email"), condition=~models.Q(email=""), name="user_email_unique_ci"
            )
        ]

    @property
    def display_name(self) -> str:
        return self.name or self.get_full_name() or self.email or self.username


class Presence(models.Model):
    """One open page of a user's, as Open WebUI's socket presence counts them: the page
    beats while it is open (accounts.presence) and says goodbye when it closes. A user
    with a page whose last beat is recent is present, and gets no notification."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="presences")
    page = models.CharField(max_length=32, help_text="The id the open page made for itself.")
    session = models.CharField(
        max_length=64, blank=True, help_text="A digest of the login session it beats in."
    )
    seen_at = models.DateTimeField(help_text="Its last heartbeat.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "page"], name="presence_one_row_per_page")
        ]
        indexes = [models.Index(fields=["user", "seen_at"], name="presence_user_seen")]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.page}"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def authenticate(self, raw: str) -> ApiToken | None:
        if not raw.startswith(TOKEN_PREFIX):
            return None
        return (
            self.select_related("user").filter(digest=hash_token(raw), user__is_active=True).first()
        )

    def from_header(self, header: str) -> ApiToken | None:
        """`Bearer <token>`, or the bare token as RunPod's own curl examples send it."""
        scheme, _, raw = header.strip().partition(" ")
        if not raw:
            return self.authenticate(scheme) if scheme else None
        return self.authenticate(raw.strip()) if scheme.lower() == "bearer" else None


class ApiToken(models.Model):
    """A bearer token for the job API and /api/v1. Only its SHA-256 is stored; it is
    shown once. Posting events is a scope only staff give (in the admin); so is addressing
    an event to another user or to a namespace its user is not a member of."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    can_post_events = models.BooleanField(
        "may post events",
        default=False,
        help_text="May post declared event types to /api/v1/events (given by staff).",
    )
    may_address_anyone = models.BooleanField(
        "may address any user or namespace",
        default=False,
        help_text="Events it posts may name any user or namespace (given by staff). Without "
        "it, only its own user and the namespaces that user owns or collaborates in.",
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name, verbose_name_plural = "API token", "API tokens"
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="token_name_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, user: User, name: str) -> tuple[ApiToken, str]:
        """Create a token; the raw value is returned once and never stored."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, digest=hash_token(raw), hint=raw[:10])
        return token, raw


class SiteConfig(models.Model):
    """Account settings an administrator can switch at run time (one row)."""

    enable_user_webhooks = models.BooleanField(
        null=True,
        blank=True,
        help_text="Users' notification webhooks. Unknown: follow ENABLE_USER_WEBHOOKS.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "account settings"

    def __str__(self) -> str:
        return "Account settings"

    @classmethod
    def load(cls) -> SiteConfig:
        return cls.objects.get_or_create(pk=1)[0]

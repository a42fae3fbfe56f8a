"""Webhooks (who wants what, where), events, deliveries and their attempts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from hooks import catalog
from hooks.encryption import EncryptedJSONField, EncryptedTextField


class Scope(models.TextChoices):
    SERVER = catalog.SERVER, "Server"
    USER = catalog.USER, "User"
    NAMESPACE = catalog.NAMESPACE, "Namespace"


ALL_EVENTS = "*"
ROTATION_GRACE = timedelta(hours=24)


class BodyFormat(models.TextChoices):
    AUTO = "auto", "Auto (detect from the URL)"
    JSON = "json", "JSON payload"
    DISCORD = "discord", "Discord"
    SLACK = "slack", "Slack"
    GOOGLE_CHAT = "google_chat", "Google Chat"
    TEAMS = "teams", "Microsoft Teams (connector: MessageCard)"
    TEAMS_WORKFLOW = "teams_workflow", "Microsoft Teams Workflows / Power Automate (Adaptive Card)"
    OPEN_WEBUI = "open_webui", "Open WebUI's code shape ({action, message, …})"


class AlertStage(models.TextChoices):
    NONE = "", "Healthy"
    FAILING = "failing", "Failing"
    RECOVERED = "recovered", "Recovered"


class Webhook(models.Model):
    name = models.CharField(max_length=100)
    url = models.CharField("URL", max_length=2000)
    active = models.BooleanField(
        default=True, help_text="Inactive webhooks receive nothing, not even skipped records."
    )
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.SERVER)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhooks",
        help_text="The user of a user-scope webhook (also who is told when it fails).",
    )
    namespace = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="Namespace of a namespace webhook."
    )
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types it receives; '*' means all of its scope."
    )
    payload_filter = models.JSONField(
        null=True,
        blank=True,
        help_text="Only events whose payload matches (hooks.outbox.filters); blank: every one.",
    )
    # Stored encrypted (hooks.encryption), like the password and the header values.
    secret = EncryptedTextField(max_length=200, blank=True)
    previous_secret = EncryptedTextField(max_length=200, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    github_signature = models.BooleanField(
        "GitHub-style signature",
        default=False,
        help_text="Also send X-Hub-Signature-256: sha256=<hex HMAC of the body>.",
    )
    djinn_headers = models.BooleanField(
        "Djinn CI headers",
        default=False,
        help_text="Also send User-Agent: Djinn-CI-Hook, X-Djinn-CI-Event, X-Djinn-CI-Hook-ID and "
        "X-Djinn-CI-Signature (sha256= and the hex HMAC of the body), so a Djinn receiver works "
        "unchanged.",
    )
    headers = EncryptedJSONField("custom headers", default=dict, blank=True)
    basic_auth_username = models.CharField(max_length=200, blank=True)
    basic_auth_password = EncryptedTextField(max_length=200, blank=True)
    data_template = models.TextField(
        "JSON data template", blank=True, help_text="Blank sends the event payload."
    )
    timeout = models.FloatField(
        null=True, blank=True, help_text="Seconds for the whole request; blank uses the default."
    )
    verify_tls = models.BooleanField("verify TLS certificates", default=True)
    follow_redirects = models.BooleanField(
        default=False,
        help_text="Follow the receiver's redirects (at most 5, each checked like the URL): "
        "307/308 send the same POST again, 301/302/303 a GET. Off: a redirect is a failure.",
    )
    ordered = models.BooleanField(
        "order per subject",
        default=False,
        help_text="Deliver each subject's events (a job's, a namespace's, a user's) one at a "
        "time, in order: the next waits until the previous one succeeded or gave up. Other "
        "subjects go on meanwhile.",
    )
    # Pacing (hooks.worker.pacing): blank keeps the hub's defaults (a chat platform's
    # documented limit for Discord and Slack URLs; no limit otherwise).
    rate_limit = models.FloatField(
        "rate limit",
        null=True,
        blank=True,
        help_text="Most requests per second to this webhook, across every worker. Blank: "
        "Discord's and Slack's own limits for their URLs, no limit otherwise.",
    )
    rate_burst = models.PositiveIntegerField(
        "burst",
        null=True,
        blank=True,
        help_text="How many requests may go at once after a quiet spell, within the rate. "
        "Blank: one second's worth (at least 1).",
    )
    max_in_flight = models.PositiveIntegerField(
        "most in flight",
        null=True,
        blank=True,
        help_text="Most requests waiting for this webhook's answer at once, across every "
        "worker. Blank: the hub's default per worker process.",
    )
    format = models.CharField(
        max_length=16,
        choices=BodyFormat.choices,
        default=BodyFormat.AUTO,
        help_text="Auto: a chat message for Discord, Slack, Google Chat and Teams URLs, "
        "the JSON payload otherwise. A data template always wins.",
    )

    slot = models.CharField(
        max_length=50,
        blank=True,
        db_index=True,
        help_text="The named server hook this webhook fills (signup, queue start, ...).",
    )
    slot_source = models.CharField(
        max_length=8, blank=True, choices=[("admin", "Admin"), ("env", "Environment")]
    )

    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failed_deliveries = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    # The owner's alerts (hooks.worker.alerts): the stage last announced in this episode
    # of failures, so each is sent once, and until when the owner snoozed the emails.
    alert_stage = models.CharField(max_length=16, blank=True, choices=AlertStage.choices)
    alert_stage_at = models.DateTimeField(null=True, blank=True)
    alerts_snoozed_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "name"]
        indexes = [models.Index(fields=["scope", "active"])]
        constraints = [
            models.UniqueConstraint(
                fields=["slot"], condition=~models.Q(slot=""), name="one_webhook_per_slot"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None

    def subscribes_to(self, event_type: str) -> bool:
        return ALL_EVENTS in self.event_types or event_type in self.event_types

    def replaced_secret_until(self, now: datetime | None = None) -> datetime | None:
        """Until when the replaced secret still signs beside the current one (None: it
        does not)."""
        now = now or timezone.now()
        expires = self.previous_secret_expires_at
        return expires if self.previous_secret and expires and expires > now else None

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The current secret, plus the previous one while its grace period lasts."""
        now = now or timezone.now()
        secrets_ = [self.secret] if self.secret else []
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > now
        ):
            secrets_.append(self.previous_secret)
        return secrets_


class WebhookPace(models.Model):
    """A paced webhook's shared token bucket (hooks.worker.pacing): the limits in force
    (the owner's, or a chat platform's default) and what every worker takes from it.
    A row exists for a webhook with limits, or one its receiver told to slow down."""

    webhook = models.OneToOneField(Webhook, on_delete=models.CASCADE, related_name="pace")
    rate = models.FloatField(null=True, blank=True, help_text="Requests per second in force.")
    burst = models.PositiveIntegerField(default=1)
    max_in_flight = models.PositiveIntegerField(null=True, blank=True)
    tokens = models.FloatField(default=0.0)
    refilled_at = models.DateTimeField(default=timezone.now)
    # Lowered by a 429 or 503 (halved), raised again after answers (up to `rate`); null:
    # `rate` as it is.
    learned_rate = models.FloatField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    # When a pump should claim again for this webhook (its next token, or the end of a
    # pause) because the last pump that looked has ended: the cluster's ticker starts
    # one then (hooks.worker.ticker). Null: no pump is owed.
    wake_at = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"pace of {self.webhook_id}"


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField(default=dict)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    namespace = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # How many of its payload's values are stored apart (LargeValue, through
    # EventValue), a preview in each one's place in `payload`; null: none.
    stored_apart = models.PositiveIntegerField(null=True, blank=True)
    # What the event is about ("job:<id>", "namespace:<name>", "user:<id>") and its
    # number among that subject's events (SubjectSequence); null: no subject. Nullable,
    # so adding them did not rewrite the table on SQLite.
    subject = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    sequence = models.PositiveBigIntegerField(null=True, blank=True)
    # When its bodies expired (WEBHOOK_BODY_RETENTION_DAYS, hooks.tools.retention): its
    # payload, its large values and its attempts' request and response bodies are gone,
    # its metadata stays; null: kept. Nullable, so adding it did not rewrite the table.
    body_expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A subject's events (the history's search by subject): partial, so events
            # without one (most) cost no index entry.
            models.Index(
                fields=["subject"], condition=models.Q(subject__isnull=False), name="event_subject"
            ),
            # The events whose bodies are still kept, oldest first: the body prune finds
            # its next batch here without passing over those it already emptied.
            models.Index(
                fields=["created_at"], condition=models.Q(body_expired_at__isnull=True),
                name="event_body_kept",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class SubjectSequence(models.Model):
    """The last sequence number given to a subject's events. Counted up in emit's
    transaction, so a rolled-back event takes no number (a subject's numbers have no
    gaps) and, on PostgreSQL, the row stays locked until the emitting transaction ends:
    the lock that orders a subject's fan-out and its release (hooks.worker.order)."""

    subject = models.CharField(max_length=200, primary_key=True)
    last = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return f"{self.subject}: {self.last}"


class LargeValue(models.Model):
    """A large value of event payloads (hooks.largevalues), its JSON stored once however
    many events of a transaction carry it (a job's output: its callback, job.finished,
    build.finished, Every Job). Found by its digest; pruned with the last event that
    carries it (hooks.tools.retention)."""

    digest = models.CharField(max_length=64, db_index=True, help_text="SHA-256 of `data`.")
    data = models.BinaryField(help_text="The value's JSON, compact, UTF-8.")
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.size} bytes {self.digest[:12]}"


class EventValue(models.Model):
    """Where a value stored apart goes in an event's payload."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    value = models.ForeignKey(LargeValue, on_delete=models.PROTECT, related_name="uses")
    path = models.JSONField(help_text="Keys and indexes from the payload's top; [] is all of it.")

    def __str__(self) -> str:
        return f"{self.event_id} {self.path}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (webhook disabled)"
        HELD = "held", "Held (waits for an earlier event of its subject)"

    # Sent as `webhook-id`: stable across retries and redeliveries.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    webhook = models.ForeignKey(  # indexed first in (webhook, created_at) (Meta)
        Webhook, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries",
        db_index=False,
    )  # fmt: skip
    target_url = models.CharField(
        max_length=2000, blank=True, help_text="Explicit URL of a delivery without a webhook."
    )
    # A delivery without a webhook is signed with this webhook's secrets (read at each
    # attempt, never copied here); none: unsigned.
    signed_by = models.ForeignKey(
        Webhook,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Whose secret signs a delivery without a webhook (a job's callback).",
    )
    retry_schedule = models.JSONField(
        null=True, blank=True, help_text="Seconds before each attempt, when not the hub's."
    )
    # Nullable, so adding it did not rewrite the table on SQLite.
    success_status = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="The one HTTP status that succeeds (200: RunPod's rule for a job's callback; "
        "another 2xx is then a failed attempt); blank: any 2xx.",
    )  # fmt: skip
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=10)
    manual = models.BooleanField(
        default=False, help_text="The next attempt was asked for by a person (redelivery)."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker owns the delivery until claimed_until; claim_token says which worker.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)  # indexed where set (Meta)
    # Handed to the broker until then; after it the sweeper enqueues it again.
    enqueued_until = models.DateTimeField(null=True, blank=True)
    last_response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)  # indexed with status (Meta)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Set only for a webhook that keeps order per subject (Webhook.ordered): the
    # event's subject and sequence, the chain its deliveries go through one at a time
    # (hooks.worker.order). Nullable: adding them did not rewrite the table on SQLite.
    subject = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    sequence = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            # Lists newest first, and a period's counts (the dashboard) from the index
            # alone, without reading each delivery's row for its status.
            models.Index(fields=["created_at", "status"], name="delivery_created_status"),
            # A webhook's history newest first (its pages, the API, the admin filtered by
            # webhook) without sorting every delivery it ever had; on PostgreSQL with its
            # status, so a period's counts (`webhooks status`) read the index alone.
            models.Index(
                fields=["webhook", "created_at"], include=["status"],
                name="delivery_webhook_created",
            ),
            # Its backlog (`webhooks status`): the few pending rows, not all of its rows; the
            # oldest of them bounds the hours a rollup may count (hooks.tools.rollup).
            models.Index(
                fields=["webhook", "created_at"], condition=models.Q(status="pending"),
                name="delivery_pending_webhook",
            ),
            # Failures newest first, a webhook's and every webhook's (the history's
            # search by status, its users' first question): failures are few, so these
            # read them alone, not every delivery of the period, and a delivery that
            # succeeds is never written to them. (Without the second, SQLite answered
            # "every failure, newest first" by sorting all of them: status's index.)
            models.Index(
                fields=["webhook", "created_at"], condition=models.Q(status="failed"),
                name="delivery_failed_webhook",
            ),
            models.Index(
                fields=["created_at"], condition=models.Q(status="failed"),
                name="delivery_failed_created",
            ),
            # Claimed rows by their worker's token. Partial: the rows at rest all hold
            # NULL, and a full index's statistics (ANALYZE, PRAGMA optimize) then say a
            # token matches every row, so SQLite scanned the table to read a claim back.
            models.Index(
                fields=["claim_token"], condition=models.Q(claim_token__isnull=False),
                name="delivery_claimed",
            ),
            # The unfinished deliveries of ordered webhooks, by chain (webhook, subject):
            # whether a new one waits, and which held one goes next. Only those rows:
            # it stays small however long the history, and costs the others nothing.
            models.Index(
                fields=["webhook", "subject", "sequence"],
                condition=models.Q(status__in=["pending", "held"], subject__isnull=False),
                name="delivery_order_chain",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return str(self.id)

    @property
    def url(self) -> str:
        return self.webhook.url if self.webhook_id else self.target_url


class Attempt(models.Model):
    class Trigger(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic"
        MANUAL = "manual", "Manual redelivery"

    # No index of its own: `attempt_number_unique` (delivery, number) serves every
    # lookup by delivery, and one index fewer is written for each attempt recorded.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_set", db_index=False
    )
    number = models.PositiveSmallIntegerField()
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.AUTOMATIC)
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    url = models.CharField(max_length=2000)
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)
    # An attempt that followed redirects: each request, in order ({method, url, status},
    # and left_out: the first request's headers it did not carry); null: one request.
    hops = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        indexes = [
            # A period's attempts newest first (the dashboard's latency sample).
            models.Index(fields=["started_at"], name="attempt_started"),
            # The last failure of a webhook (`webhooks status`): failures are few.
            models.Index(
                fields=["started_at"],
                condition=models.Q(succeeded=False),
                name="attempt_failed_started",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_number_unique")
        ]

    def __str__(self) -> str:
        return f"#{self.number} of {self.delivery_id}"


class DeliveryHour(models.Model):
    """A webhook's finished deliveries created in one settled hour, counted once
    (`hooks.tools.rollup`): a week's success rate then reads 168 rows, not every
    delivery of the week. A row counts only under its webhook's current epoch."""

    # (webhook, hour) is unique, which indexes the webhook first: no index of its own
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()  # its start (UTC)
    epoch = models.PositiveIntegerField()
    succeeded = models.PositiveIntegerField()
    failed = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["webhook", "hour"], name="one_delivery_hour")
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} at {self.hour:%Y-%m-%d %H:00}"


class DeliveryHourEpoch(models.Model):
    """Raised whenever a webhook's settled history changes (a redelivery, a deletion):
    every DeliveryHour counted under an earlier epoch is void. Its own table, so no save
    of a webhook loaded earlier can write an old epoch back."""

    webhook = models.OneToOneField(
        Webhook, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    epoch = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.webhook_id}: {self.epoch}"


class HubHour(models.Model):
    """Every delivery created in one settled hour, of any webhook or none, counted once
    for the dashboard (`hooks.tools.rollup`): a week reads 168 rows, not every delivery
    of the week. A row counts only under the current HubEpoch."""

    hour = models.DateTimeField(unique=True)  # its start (UTC)
    epoch = models.PositiveIntegerField()
    total = models.PositiveIntegerField()
    succeeded = models.PositiveIntegerField()
    failed = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00}"


class HubEpoch(models.Model):
    """One row, raised with any webhook's epoch (a redelivery, a stop, a prune, a
    deletion): every HubHour counted under an earlier epoch is void."""

    epoch = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.epoch)


class DeclaredEventType(models.Model):
    """An event type declared by staff in the admin, for producers outside this Django
    project (they post it to /api/v1/events). Code-registered types cannot be declared."""

    name = models.CharField(
        max_length=100, unique=True, help_text="Like 'invoice.paid' or 'deploys'."
    )
    description = models.CharField(max_length=300)
    example = models.JSONField(
        default=dict, blank=True, help_text="An example payload (a JSON object), shown to owners."
    )
    for_server = models.BooleanField("server webhooks may subscribe", default=True)
    for_users = models.BooleanField("users' webhooks may subscribe", default=False)
    for_namespaces = models.BooleanField("namespace webhooks may subscribe", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "declared event type"

    def __str__(self) -> str:
        return self.name

    @property
    def scopes(self) -> tuple[str, ...]:
        chosen = (self.for_server, self.for_users, self.for_namespaces)
        return tuple(s for s, on in zip(catalog.SCOPES, chosen, strict=True) if on)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            catalog.check_name(self.name)
        except ValueError as exc:
            errors["name"] = str(exc)
        if catalog.is_registered_in_code(self.name):
            errors["name"] = f"{self.name!r} is one of the hub's own event types."
        if not self.scopes:
            errors["for_server"] = "Choose at least one kind of webhook that may subscribe."
        if not isinstance(self.example, dict):
            errors["example"] = "The example payload must be a JSON object."
        if errors:
            raise ValidationError(errors)

    def as_event_type(self) -> catalog.EventType:
        return catalog.EventType(self.name, self.description, self.scopes, self.example or {})

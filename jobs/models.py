"""Job endpoints (RunPod-style handlers), jobs, and the hub's queue state."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_job_id() -> str:
    return str(uuid.uuid4())


def new_sync_job_id() -> str:
    """A `/runsync` job's id: RunPod starts these with `sync-`."""
    return f"sync-{uuid.uuid4()}"


class Endpoint(models.Model):
    """A named endpoint whose jobs run `handler(job) -> output` (RunPod's contract)."""

    name = models.SlugField(max_length=64, unique=True)
    handler = models.CharField(max_length=200, help_text="Dotted path, e.g. jobs.handlers.echo")
    description = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    class Status(models.TextChoices):
        IN_QUEUE = "IN_QUEUE"
        IN_PROGRESS = "IN_PROGRESS"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"
        CANCELLED = "CANCELLED"
        TIMED_OUT = "TIMED_OUT"

    class Webhooks(models.TextChoices):
        NONE = "none", "None"
        NORMAL = "normal", "Normal (Every Job hook)"
        MANUAL = "manual", "Manual (Every Job and Manual Job hooks)"

    FINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT)

    id = models.CharField(primary_key=True, max_length=64, default=new_job_id, editable=False)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="jobs")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_QUEUE)
    input = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    webhook = models.CharField(max_length=2000, blank=True)
    execution_timeout_ms = models.PositiveBigIntegerField(default=600_000)
    ttl_ms = models.PositiveBigIntegerField(default=86_400_000)
    low_priority = models.BooleanField(default=False)
    webhooks_mode = models.CharField(
        max_length=8, choices=Webhooks.choices, default=Webhooks.NORMAL
    )
    tags = models.JSONField(default=list, blank=True)
    retries = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "low_priority", "created_at"])]

    def __str__(self) -> str:
        return self.id

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    def delay_ms(self) -> int:
        end = self.started_at or self.completed_at or timezone.now()
        return max(int((end - self.created_at).total_seconds() * 1000), 0)

    def execution_ms(self) -> int:
        if not self.started_at:
            return 0
        end = self.completed_at or timezone.now()
        return max(int((end - self.started_at).total_seconds() * 1000), 0)

    def status_json(self, *, with_input: bool = False) -> dict:
        """RunPod's status body (the callback body adds `input` and `webhook`)."""
        body = {
            "id": self.id,
            "status": self.status,
            "delayTime": self.delay_ms(),
            "executionTime": self.execution_ms(),
        }
        if with_input:
            body["input"] = self.input
        if self.status == self.Status.COMPLETED or self.output is not None:
            body["output"] = self.output  # a failed handler's other keys too (RunPod)
        if self.status != self.Status.COMPLETED and self.error:
            body["error"] = self.error
        if with_input and self.webhook:
            body["webhook"] = self.webhook
        return body


class QueueState(models.Model):
    """The hub's one queue state (SwarmUI): idle → starting (Queue Start hook) → busy →
    ending (Queue End hook) → idle. Changed only under a row lock."""

    class State(models.TextChoices):
        IDLE = "idle"
        STARTING = "starting"
        BUSY = "busy"
        ENDING = "ending"

    state = models.CharField(max_length=10, choices=State.choices, default=State.IDLE)
    owner = models.CharField(max_length=64, blank=True, help_text="Worker sending the hook.")
    lease_until = models.DateTimeField(null=True, blank=True)
    last_job_activity = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)
    queue_end_delay = models.FloatField(
        default=1.0, help_text="Seconds with nothing queued or running before Queue End."
    )

    def __str__(self) -> str:
        return self.state

    @classmethod
    def load(cls) -> QueueState:
        return cls.objects.get_or_create(pk=1)[0]

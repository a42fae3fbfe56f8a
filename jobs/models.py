"""Job endpoints (RunPod-style handlers), jobs, and the hub's queue state."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def new_job_id() -> str:
    return str(uuid.uuid4())


def new_sync_job_id() -> str:
    """A `/runsync` job's id: RunPod starts these with `sync-`."""
    return f"sync-{uuid.uuid4()}"


def payload_limit(*, sync: bool) -> int:
    """JOB_PAYLOAD_LIMIT, or JOB_PAYLOAD_LIMIT_SYNC for a /runsync job."""
    return settings.JOB_PAYLOAD_LIMIT_SYNC if sync else settings.JOB_PAYLOAD_LIMIT


class Endpoint(models.Model):
    """A named endpoint whose jobs run `handler(job) -> output` (RunPod's contract)."""

    name = models.SlugField(max_length=64, unique=True)
    handler = models.CharField(
        max_length=200, blank=True,
        help_text="Dotted path, e.g. jobs.handlers.echo. Blank: only remote RunPod workers "
        "(worker keys) run its jobs; the hub's own job workers leave them queued.",
    )  # fmt: skip
    description = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)
    aggregate_stream = models.BooleanField(
        "Aggregate the stream",
        default=False,  # RunPod's return_aggregate_stream is off unless a worker turns it on
        help_text="For a generator handler: the job's output is the list of its yielded chunks "
        "(RunPod's return_aggregate_stream). Unticked (RunPod's default), the output is [] and "
        "the chunks are only read through /stream.",
    )
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

    class Trigger(models.TextChoices):
        """How a job came, in Djinn's trigger words: submitted by someone (the API), or
        by a namespace's cron job."""

        MANUAL = "manual", "Manual (submitted through the API)"
        SCHEDULE = "schedule", "Schedule (a namespace's cron job)"

    class CallbackRule(models.TextChoices):
        HUB = "hub", "The hub's: any 2xx, JOB_CALLBACK_SCHEDULE"
        RUNPOD = "runpod", "RunPod's: HTTP 200 only, three attempts 10 s apart"

    class Webhooks(models.TextChoices):
        NONE = "none", "None"
        NORMAL = "normal", "Normal (Every Job hook)"
        MANUAL = "manual", "Manual (Every Job and Manual Job hooks, per output)"
        MANUAL_AT_END = "manual_at_end", "Manual At End (Every Job per output, Manual Job once)"

    FINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT)

    id = models.CharField(primary_key=True, max_length=64, default=new_job_id, editable=False)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="jobs")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_QUEUE)
    input = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    progress = models.JSONField(
        null=True, blank=True, help_text="The latest progress its handler reported while it runs "
        "(RunPod's progress_update); cleared when it ends.",
    )  # fmt: skip
    error = models.TextField(blank=True)
    history = models.JSONField(
        null=True, blank=True, help_text="What befell it beside its states, oldest first "
        "([{at, kind, text}]): a remote worker lost with it, and what came of that.",
    )  # fmt: skip
    webhook = models.CharField(max_length=2000, blank=True)
    callback_rule = models.CharField(
        max_length=8, choices=CallbackRule.choices, default=CallbackRule.HUB,
        help_text="When its callback counts as delivered, and how it is retried.",
    )  # fmt: skip
    execution_timeout_ms = models.PositiveBigIntegerField(default=600_000)
    ttl_ms = models.PositiveBigIntegerField(default=86_400_000)
    low_priority = models.BooleanField(default=False)
    webhooks_mode = models.CharField(
        max_length=16, choices=Webhooks.choices, default=Webhooks.NORMAL
    )
    tags = models.JSONField(default=list, blank=True)
    namespace = models.ForeignKey(
        "namespaces.Namespace", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="jobs", help_text="The namespace it was submitted into (Djinn's builds).",
    )  # fmt: skip
    number = models.PositiveIntegerField(
        null=True, blank=True, help_text="Its number among the namespace's jobs (1, 2, …)."
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    trigger_comment = models.CharField(
        max_length=300, blank=True, help_text="What triggered it, in words (a cron job's name)."
    )
    pinned = models.BooleanField(
        default=False, help_text="Pinned by a member of its namespace (Djinn's pinned builds)."
    )
    retries = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.ForeignKey(
        "RemoteWorker", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs",
        help_text="The remote RunPod worker that took it (none: the hub's own job workers).",
    )  # fmt: skip

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "low_priority", "created_at"]),
            models.Index(fields=["completed_at"], name="job_completed_at"),  # result expiry
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_sync(self) -> bool:
        return self.id.startswith("sync-")

    @property
    def look(self) -> str:
        """How pages colour its status: succeeded, pending or failed."""
        if self.status == self.Status.COMPLETED:
            return "succeeded"
        return (
            "pending"
            if self.status in (self.Status.IN_QUEUE, self.Status.IN_PROGRESS)
            else "failed"
        )

    @property
    def history_rows(self) -> list[tuple[datetime | None, str]]:
        """Its history for pages: (when, what), oldest first."""
        return [(parse_datetime(e.get("at", "")), e.get("text", "")) for e in self.history or []]

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    def result_kept_for(self) -> int:
        """Seconds this job's result is kept after it finished (RunPod's retention)."""
        return settings.JOB_RESULT_TTL_SYNC if self.is_sync else settings.JOB_RESULT_TTL

    def ttl_expired(self) -> bool:
        """Past its ttl, which covers the job's whole life: RunPod removes such a job."""
        return timezone.now() > self.created_at + timedelta(milliseconds=self.ttl_ms)

    def payload_limit(self) -> int:
        """The largest input and output of this job, in bytes of JSON (RunPod's payload
        limit of the route it came by: 10 MB for /run, 20 MB for /runsync)."""
        return payload_limit(sync=self.is_sync)

    def result_expired(self) -> bool:
        if not self.is_final or self.completed_at is None:
            return False
        return timezone.now() - self.completed_at > timedelta(seconds=self.result_kept_for())

    def delay_ms(self) -> int:
        end = self.started_at or self.completed_at or timezone.now()
        return max(int((end - self.created_at).total_seconds() * 1000), 0)

    def execution_ms(self) -> int:
        if not self.started_at:
            return 0
        end = self.completed_at or timezone.now()
        return max(int((end - self.started_at).total_seconds() * 1000), 0)

    @property
    def shown_output(self):
        """Its output, or while it runs the progress its handler reported (RunPod's
        /status shows progress as an IN_PROGRESS job's `output`)."""
        return self.progress if self.status == self.Status.IN_PROGRESS else self.output

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
        output = self.shown_output
        if self.status == self.Status.COMPLETED or output is not None:
            body["output"] = output  # a failed handler's other keys too (RunPod)
        if self.status != self.Status.COMPLETED and self.error:
            body["error"] = self.error
        if with_input and self.webhook:
            body["webhook"] = self.webhook
        return body


class Chunk(models.Model):
    """One chunk a generator handler yielded, in order. `/stream` hands each chunk out
    once: a reader claims the unread chunks with its own token in one UPDATE."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    output = models.JSONField(null=True)
    read_by = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="chunk_job_seq")]
        indexes = [models.Index(fields=["job", "read_by"])]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.seq}"


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


class WorkerCluster(models.Model):
    """A running jobs cluster (one `runjobs`), seen by its heartbeat: what `/health`
    counts as workers."""

    name = models.CharField(max_length=200, unique=True, help_text="host:pid of runjobs")
    workers = models.PositiveIntegerField()
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class WorkerKey(models.Model):
    """A remote RunPod worker's RUNPOD_AI_API_KEY: takes the jobs of one endpoint (or of
    every endpoint). Only its SHA-256 is stored; it is shown once; revoked, it takes
    nothing more. A user's API token is not a worker key."""

    PREFIX = "whw_"

    name = models.CharField(max_length=100)
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="worker_keys",
        help_text="The endpoint whose jobs it takes; blank: every endpoint.",
    )  # fmt: skip
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    def set_new_key(self) -> str:
        """Give it a new raw key (returned once, never stored)."""
        raw = self.PREFIX + secrets.token_urlsafe(32)
        self.digest, self.hint = self.hash(raw), raw[:10]
        return raw

    @classmethod
    def issue(cls, name: str, endpoint: Endpoint | None = None) -> tuple[WorkerKey, str]:
        key = cls(name=name, endpoint=endpoint)
        raw = key.set_new_key()
        key.save()
        return key, raw

    @classmethod
    def authenticate(cls, raw: str) -> WorkerKey | None:
        if not raw.startswith(cls.PREFIX):
            return None
        return cls.objects.filter(digest=cls.hash(raw), revoked_at=None).first()

    def serves(self, endpoint: Endpoint) -> bool:
        return self.endpoint_id is None or self.endpoint_id == endpoint.pk


class RemoteWorker(models.Model):
    """A remote worker (its RUNPOD_POD_ID under one key), seen by its takes and pings."""

    key = models.ForeignKey(WorkerKey, on_delete=models.CASCADE, related_name="workers")
    pod_id = models.CharField(max_length=200)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "pod_id"], name="remote_worker_key_pod")
        ]

    def __str__(self) -> str:
        return self.pod_id

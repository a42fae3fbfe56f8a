from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html, format_html_join

import hooks
from jobs import remote
from jobs.forms import EndpointForm
from jobs.models import Endpoint, Job, QueueState, RemoteWorker, WorkerKey


def holding(worker: RemoteWorker, endpoint: Endpoint) -> str:
    job = worker.jobs.filter(endpoint=endpoint, status=Job.Status.IN_PROGRESS).first()
    return job.pk if job else "none"


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "handler", "active", "description"]
    form = EndpointForm
    readonly_fields = ["remote_workers"]

    @admin.display(description="Remote workers")
    def remote_workers(self, obj: Endpoint) -> str:
        """The environment lines a stock runpod-python worker needs (its key is made
        under Worker keys, shown once), and its live workers: id, last ping, job in hand."""
        if obj.pk is None:
            return "Save the endpoint first."
        lines = "\n".join(
            f"{name}={value}"
            for name, value in remote.environment(settings.SITE_URL, obj.name).items()
        )
        live = remote.live_workers().filter(Q(key__endpoint=obj) | Q(key__endpoint=None))
        rows = format_html_join(
            "", "<li>{} — last seen {} — job {}</li>",
            ((w.pod_id, w.seen_at.isoformat(timespec="seconds"), holding(w, obj)) for w in live),
        )  # fmt: skip
        return format_html("<pre>{}</pre><p>Live workers:</p><ul>{}</ul>", lines, rows or "none")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "endpoint", "user", "status", "created_at", "started_at", "completed_at"]
    list_filter = ["status", "endpoint", "created_at"]
    search_fields = ["id", "user__email"]
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(QueueState)
class QueueStateAdmin(admin.ModelAdmin):
    list_display = ["state", "owner", "changed_at", "last_job_activity", "queue_end_delay"]
    readonly_fields = ["state", "owner", "lease_until", "changed_at", "last_job_activity"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WorkerKey)
class WorkerKeyAdmin(admin.ModelAdmin):
    """Remote workers' RUNPOD_AI_API_KEY: made here, shown once, revoked by an action."""

    list_display = ["name", "endpoint", "hint", "created_at", "revoked_at"]
    fields = ["name", "endpoint", "hint", "created_at", "revoked_at"]
    readonly_fields = ["hint", "created_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj: WorkerKey, form, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        raw = obj.set_new_key()
        super().save_model(request, obj, form, change)
        messages.success(
            request,
            hooks.value_shown_once(
                "Worker key", obj.name, raw, "Set it as the worker's RUNPOD_AI_API_KEY."
            ),
        )

    @admin.action(description="Revoke the selected worker keys")
    def revoke(self, request, queryset) -> None:
        revoked = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, f"{revoked} worker key(s) revoked.")


@admin.register(RemoteWorker)
class RemoteWorkerAdmin(admin.ModelAdmin):
    list_display = ["pod_id", "key", "seen_at"]
    readonly_fields = ["pod_id", "key", "seen_at"]

    def has_add_permission(self, request) -> bool:
        return False

from django.contrib import admin

from jobs.forms import EndpointForm
from jobs.models import Endpoint, Job, QueueState


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "handler", "active", "description"]
    form = EndpointForm


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

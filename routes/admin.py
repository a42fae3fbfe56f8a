"""Admin: route events, route webhooks (with their recent deliveries and a test button),
and the audit of changes to both."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views.decorators.http import require_POST

import hooks
from hooks.models import Delivery
from routes import audit, configure
from routes.forms import RouteEventForm, RouteWebhookForm
from routes.models import AuditRecord, RouteEvent, RouteWebhook

BODY_PREVIEW = 300


class Audited(admin.ModelAdmin):
    """Changes made through these pages are recorded with the admin user who made them."""

    def changeform_view(self, request, *args, **kwargs):
        with audit.acting_as(request.user):
            return super().changeform_view(request, *args, **kwargs)

    def delete_view(self, request, *args, **kwargs):
        with audit.acting_as(request.user):
            return super().delete_view(request, *args, **kwargs)

    def changelist_view(self, request, *args, **kwargs):  # bulk delete
        with audit.acting_as(request.user):
            return super().changelist_view(request, *args, **kwargs)


@admin.register(RouteEvent)
class RouteEventAdmin(Audited):
    form = RouteEventForm
    list_display = ["label", "method", "pattern", "listeners", "updated_at"]
    search_fields = ["label", "pattern"]

    @admin.display(description="route webhooks")
    def listeners(self, obj: RouteEvent) -> int:
        return obj.webhooks.count()


@admin.register(RouteWebhook)
class RouteWebhookAdmin(Audited):
    form = RouteWebhookForm
    list_display = ["name", "target", "is_active", "route_events", "last_delivery"]
    readonly_fields = ["secret_state"]

    def get_queryset(self, request):
        last = Delivery.objects.filter(webhook=OuterRef("webhook")).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .select_related("webhook")
            .prefetch_related("events")
            .annotate(  # one query for the list, not one per row
                last_at=Subquery(last.values("created_at")[:1]),
                last_status=Subquery(last.values("status")[:1]),
            )
        )

    def get_fieldsets(self, request, obj=None):
        fields = ["active", "name", "url", "follow_redirects", "secret_action", "pasted_secret",
                  "header_name", "header_value", "basic_auth_username", "basic_auth_password",
                  "events"]  # fmt: skip
        if obj is None:
            return [(None, {"fields": fields})]
        fields.insert(fields.index("basic_auth_password") + 1, "remove_password")
        fields.insert(fields.index("secret_action"), "secret_state")
        return [(None, {"fields": fields})]

    @admin.display(description="name")
    def name(self, obj: RouteWebhook) -> str:
        return obj.webhook.name

    @admin.display(description="target")
    def target(self, obj: RouteWebhook) -> str:
        return obj.webhook.url

    @admin.display(description="active", boolean=True)
    def is_active(self, obj: RouteWebhook) -> bool:
        return obj.webhook.active and not obj.webhook.is_disabled

    @admin.display(description="route events")
    def route_events(self, obj: RouteWebhook) -> str:
        return ", ".join(e.label for e in obj.events.all()) or "—"

    @admin.display(description="last delivery")
    def last_delivery(self, obj: RouteWebhook) -> str:
        at = getattr(obj, "last_at", None)
        return f"{obj.last_status} {at:%Y-%m-%d %H:%M:%S}" if at else "—"

    @admin.display(description="current secret")  # as on every webhook's page
    def secret_state(self, obj: RouteWebhook) -> str:
        return hooks.secret_state(obj.webhook)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Below the form, its recent deliveries (APIO's history: its unique id opens
        each one), the same table as every webhook's page."""
        route = self.get_object(request, object_id)
        if route is not None:
            rows = hooks.admin_recent_deliveries(request, route.webhook)
            extra_context = {**(extra_context or {}), "delivery_rows": rows}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        test = self.admin_site.admin_view(require_POST(self.send_test))
        return [path("<int:pk>/test/", test, name="routes_routewebhook_test")] + super().get_urls()

    def send_test(self, request, pk: int):
        route = get_object_or_404(RouteWebhook.objects.select_related("webhook"), pk=pk)
        if not self.has_change_permission(request, route):
            return redirect("admin:index")
        attempt = configure.send_test(route)
        outcome = f"HTTP {attempt.response_status}" if attempt.response_status else attempt.error
        level = messages.SUCCESS if attempt.succeeded else messages.ERROR
        messages.add_message(
            request, level,
            f"Test event: {outcome} in {attempt.duration_ms:.0f} ms. "
            f"Response: {attempt.response_body[:BODY_PREVIEW] or '(empty)'}",
        )  # fmt: skip
        return redirect("admin:routes_routewebhook_change", pk)

    def save_form(self, request, form, change):
        """The form stores everything now, naming who changed it (`webhook.changed`)."""
        return form.save(commit=False, by=request.user)

    def save_model(self, request, obj, form, change) -> None:
        if form.new_secret:
            messages.warning(request, hooks.secret_shown_once(obj.webhook.name, form.new_secret))

    def save_related(self, request, form, formsets, change) -> None:
        pass  # the form saved the webhook, the route webhook and its route events

    def delete_model(self, request, obj: RouteWebhook) -> None:
        obj.webhook.delete()  # the route side goes with it

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset.select_related("webhook"):
            obj.webhook.delete()


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_label", "action", "kind", "object_repr", "changes"]
    list_filter = ["kind", "action"]
    search_fields = ["object_repr", "actor_label"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

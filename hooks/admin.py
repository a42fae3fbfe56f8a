"""Admin: webhooks, events, and deliveries with their attempts (request beside response).

The operators' main tool; it sits here, not in hooks/tools/, because Django's admin
looks for `<app>.admin`. Its extra pages are in hooks/tools/admin_views.py."""

from __future__ import annotations

import json
import uuid
from functools import partial

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from hooks import catalog, scopes
from hooks.models import Attempt, DeclaredEventType, Delivery, Event, Webhook
from hooks.outgoing.body import body_for
from hooks.tools import admin_views, rollup, shown
from hooks.tools.forms import WebhookForm

STATUS_LOOK = {  # colour and icon of each delivery status in the list
    Delivery.Status.SUCCEEDED: ("#1c7c3a", "✓"),
    Delivery.Status.FAILED: ("#b42318", "✗"),
    Delivery.Status.PENDING: ("#9a6700", "⏳"),
    Delivery.Status.SKIPPED: ("#5b6475", "⤼"),
}


def status_badge(status: str, text: str, weight: int = 400) -> str:
    """A delivery status's colour and icon before `text`."""
    colour, icon = STATUS_LOOK.get(status, ("#5b6475", "•"))
    return format_html(
        '<span style="color:{};font-weight:{};white-space:nowrap">{} {}</span>',
        colour, weight, icon, text,
    )  # fmt: skip


class VoidsRollupOnDelete:
    """Deleting history from the admin voids the hours counted for its webhooks
    (hooks.tools.rollup); `webhooks_of` says which webhooks a queryset touches."""

    webhooks_of = "webhook_id"

    def delete_model(self, request, obj) -> None:
        self.delete_queryset(request, type(obj).objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            rollup.invalidate(
                queryset.order_by().values_list(self.webhooks_of, flat=True).distinct()
            )
            queryset.delete()


SCOPE_FIELDS = {"owner", "namespace"}
SCOPE_FIELD = {"user": "owner", "namespace": "namespace"}  # what each scope belongs to


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["name", "kind", "belongs_to", "short_url", "is_on", "health", "last_delivery"]
    list_filter = ["scope", "active", ("disabled_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "url", "namespace"]
    readonly_fields = ["health", "secret_state", "preview", "filter_preview", "pace_in_force",
                       "created_at", "updated_at"]  # fmt: skip
    autocomplete_fields = ["owner"]
    fieldsets = [  # the scope first: it decides the event types offered
        ("Scope", {"fields": ["scope", "owner", "namespace"]}),
        (None, {"fields": ["name", "url", "active", "event_types", "payload_filter",
                           "filter_preview", "health"]}),
        (
            "Request",
            {
                "fields": [
                    "format", "data_template", "preview", "headers_text", "timeout", "verify_tls",
                    "follow_redirects", "ordered", "basic_auth_username", "new_basic_auth_password",
                    "clear_basic_auth_password",
                ]
            },
        ),
        ("Pacing", {"fields": ["rate_limit", "rate_burst", "max_in_flight", "pace_in_force"]}),
        ("Signing", {"fields": ["secret_state", "secret_action", "pasted_secret", "github_signature",
                                 "djinn_headers"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]  # fmt: skip

    def get_fieldsets(self, request, obj=None):
        """Pacing folded away unless the webhook has a limit of its own (the add page
        stays one screen tall; an error in it unfolds it)."""
        paced = obj is not None and any(
            getattr(obj, name) is not None for name in ("rate_limit", "rate_burst", "max_in_flight")
        )
        return [
            (name, {**options, "classes": ["collapse"]}) if name == "Pacing" and not paced
            else (name, options)
            for name, options in self._fieldsets_for(obj)
        ]  # fmt: skip

    def get_urls(self):
        def view(func, name_suffix: str, path_suffix: str):
            wrapped = self.admin_site.admin_view(partial(func, model_admin=self))
            return path(f"<int:pk>/{path_suffix}/", wrapped, name=f"hooks_webhook_{name_suffix}")

        # Each view checks the webhook's view or change permission itself (admin_views).
        return [
            view(admin_views.send_test, "test", "test"),
            view(admin_views.rotate_secret, "rotate", "rotate-secret"),
            view(admin_views.enable, "enable", "enable"),
            view(admin_views.snooze, "snooze", "snooze"),
            view(admin_views.replay, "replay", "replay"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        for webhook in Webhook.objects.filter(disabled_at__isnull=False):
            self.message_user(
                request,
                f"“{webhook.name}” is disabled: {webhook.disabled_reason}",
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        webhook = Webhook.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if webhook and webhook.is_disabled and request.method == "GET":
            self.message_user(
                request,
                f"This webhook is disabled since {webhook.disabled_at:%Y-%m-%d %H:%M} UTC: "
                f"{webhook.disabled_reason} Deliveries meanwhile are kept as skipped.",
                messages.WARNING,
            )
        if webhook:
            rows = admin_views.admin_recent_deliveries(request, webhook)
            extra_context = {**(extra_context or {}), "delivery_rows": rows}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="preview")
    def preview(self, obj: Webhook) -> str:
        """The body each subscribed event type's example would get, one folded block per
        type (a webhook of every namespace event would otherwise be a page of bodies)."""
        if not obj.pk:
            return "Save to see a preview."
        types = [t for t in catalog.event_types() if obj.subscribes_to(t.name)]
        if not types:
            return "Subscribe to an event type to see a preview."
        blocks = []
        for spec in types:
            event = Event(type=spec.name, payload=spec.example, created_at=timezone.now())
            body = body_for(Delivery(event=event, webhook=obj))
            blocks.append((spec.name, _pretty(body.text())))
        shown_open = " open" if len(blocks) == 1 else ""
        return format_html_join(
            "", "<details class='preview'{}><summary><strong>{}</strong></summary><pre>{}</pre></details>",
            ((shown_open, name, body) for name, body in blocks),
        )  # fmt: skip

    @admin.display(description="filter preview")
    def filter_preview(self, obj: Webhook) -> str:
        """Which of the last 20 events it subscribes to its filter would have let through."""
        if obj.payload_filter is None:
            return "No filter: it receives every event it subscribes to."
        recent = shown.filter_preview(obj)
        if not recent:
            return "No events of its types yet."
        rows = [(("✓" if matched else "✗"),
                 f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.type,
                 Truncator(json.dumps(e.payload)).chars(120))  # a cut one ends in "…"
                for e, matched in recent]  # fmt: skip
        passed = sum(1 for r in rows if r[0] == "✓")
        return format_html(
            "<p>{} of the last {} events it subscribes to would have been sent.</p>{}",
            passed, len(rows),
            format_html_join("", "<div><strong>{}</strong> {} <code>{}</code> <code>{}</code></div>", rows),
        )  # fmt: skip

    def get_queryset(self, request):
        # Server webhooks first; user and namespace views come with their pages.
        last = Delivery.objects.filter(webhook=OuterRef("pk")).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .select_related("owner")
            .annotate(
                last_at=Subquery(last.values("created_at")[:1]),
                last_status=Subquery(last.values("status")[:1]),
            )
        )

    class Media:
        # The add form shows Owner or Namespace, and the event types, by scope; the event
        # types sit in a grid of their sources.
        js = ["hooks/webhook_form.js"]
        css = {"all": ["hooks/webhook_form.css"]}

    def get_readonly_fields(self, request, obj=None):
        # A webhook keeps its scope: its owner or namespace, secrets and history go with it.
        return [*self.readonly_fields, "scope"] if obj is not None else self.readonly_fields

    def _fieldsets_for(self, obj: Webhook | None) -> list:
        """An add form shows only what a new webhook can have; a webhook's own page only
        what its scope has (no owner for a server webhook, no namespace for a user's)."""
        if obj is not None:
            hidden = SCOPE_FIELDS - {SCOPE_FIELD.get(obj.scope, "")}
            return [
                (title, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
                for title, options in self.fieldsets
            ]
        hidden = {"health", "secret_state", "clear_basic_auth_password", "preview",
                  "filter_preview", "pace_in_force"}  # fmt: skip
        return [
            (title, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for title, options in self.fieldsets
            if title != "Record"
        ]

    @admin.display(description="scope", ordering="scope")
    def kind(self, obj: Webhook) -> str:
        """Its scope, or the page that owns it (a route webhook is not just 'Server')."""
        return catalog.kind_of(obj.event_types or []) or obj.get_scope_display()

    @admin.display(description="URL", ordering="url")
    def short_url(self, obj: Webhook) -> str:
        """The URL on one line, cut with an ellipsis (the whole of it on hover)."""
        return format_html('<span class="url-cell" title="{}">{}</span>', obj.url, obj.url)

    @admin.display(description="active", boolean=True)
    def is_on(self, obj: Webhook) -> bool:
        """On and not disabled by its failures (a disabled webhook is not shown as active)."""
        return obj.active and not obj.is_disabled

    @admin.display(description="owner / namespace")
    def belongs_to(self, obj: Webhook) -> str:
        if obj.scope == "user" and obj.owner:
            return obj.owner.email
        return scopes.namespace_label(obj.namespace) or "—"

    @admin.display(description="last delivery")
    def last_delivery(self, obj: Webhook) -> str:
        at = getattr(obj, "last_at", None)
        if at is None:
            return "—"
        return status_badge(obj.last_status, f"{at:%Y-%m-%d %H:%M}")

    @admin.display(description="state")
    def health(self, obj: Webhook) -> str:
        return shown.health_state(obj)  # as on every webhook's page

    @admin.display(description="pace in force")  # as on every webhook's page
    def pace_in_force(self, obj: Webhook) -> str:
        return shown.pace_state(obj) or "not paced"

    @admin.display(description="current secret")  # as on every webhook's page
    def secret_state(self, obj: Webhook) -> str:
        return shown.secret_state(obj)

    def save_form(self, request, form, change: bool) -> Webhook:
        """The form stores the webhook now, naming who changed it (`webhook.changed`)."""
        return form.save(commit=False, by=request.user)

    def save_model(self, request, obj: Webhook, form, change: bool) -> None:
        """The form stored the webhook (hooks.configure); a secret it generated is shown
        here, this once."""
        if form.saved is None:
            form.save()
        if form.saved.new_secret:
            self.message_user(
                request, shown.secret_shown_once(obj.name, form.saved.new_secret),
                messages.WARNING,
            )  # fmt: skip


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


def _expired(when) -> str:
    return f"(body expired on {when:%Y-%m-%d %H:%M} UTC: WEBHOOK_BODY_RETENTION_DAYS)"


def _headers_html(headers: dict) -> str:
    return format_html_join("\n", "{}: {}", sorted(headers.items()))


def _hops_html(hops: list[dict] | None) -> str:
    """Each request of an attempt that followed redirects: method, URL, status."""
    if not hops:
        return mark_safe("")  # safe, so that the exchange after it is not escaped twice
    rows = format_html_join(
        "", "<li><code>{} {}</code> → {}{}</li>",
        ((hop["method"], hop["url"], f"HTTP {hop['status']}" if hop["status"] else "no answer",
          f" (without {', '.join(hop['left_out'])})" if hop.get("left_out") else "")
         for hop in hops),
    )  # fmt: skip
    return format_html("<strong>Redirects followed</strong><ol>{}</ol>", rows)


class AttemptInline(admin.StackedInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ["summary", "exchange"]
    readonly_fields = fields
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("delivery__event")  # body expiry

    @admin.display(description="attempt")
    def summary(self, obj: Attempt) -> str:
        outcome = obj.response_status or "no response"
        return (
            f"#{obj.number} ({obj.get_trigger_display().lower()}) at {obj.started_at:%Y-%m-%d %H:%M:%S} "
            f"→ {outcome} in {obj.duration_ms:.0f} ms{' — ' + obj.error if obj.error else ''}"
        )

    @admin.display(description="request / response")
    def exchange(self, obj: Attempt) -> str:
        """The request beside the response; one above the other on a phone (the hub's
        webhookhub/admin.css). Above them, the hops of an attempt that followed redirects.
        Bodies that expired say so, never an empty body."""
        expired = obj.delivery.event.body_expired_at
        request_body, response_body = (
            (_expired(expired), _expired(expired))
            if expired
            else (_pretty(obj.request_body), _pretty(obj.response_body))
        )
        return _hops_html(obj.hops) + format_html(
            '<div class="exchange"><div><strong>Request</strong><pre>POST {}\n{}\n\n{}</pre></div>'
            "<div><strong>Response</strong><pre>{}\n{}\n\n{}</pre></div></div>",
            obj.url,
            _headers_html(obj.request_headers),
            request_body,
            obj.response_status or obj.error,
            _headers_html(obj.response_headers),
            response_body,
        )


@admin.register(Delivery)
class DeliveryAdmin(VoidsRollupOnDelete, admin.ModelAdmin):
    list_display = ["short_id", "coloured_status", "target", "event_type", "last_response_status",
                    "duration", "created_at"]  # fmt: skip
    list_display_links = ["short_id"]
    # A million rows: no COUNT(*) of the whole table for "show all" (the paginator
    # estimates an unfiltered count on PostgreSQL).
    show_full_result_count = False
    paginator = admin_views.EstimatedCountPaginator
    change_form_template = "admin/hooks/delivery/change_form.html"
    # A period is picked with the created_at filter (today, 7 days, this month); no
    # date_hierarchy: its month links are a DISTINCT over every row (8 s at a million).
    list_filter = ["status", "webhook", "event__type", "created_at"]
    search_fields = ["id", "target_url", "webhook__name", "event__id"]
    list_select_related = ["event", "webhook", "webhook__owner"]
    # What a person looks for first: how it went, to whom, for what; then the rest.
    fields = ["coloured_status", "webhook", "target_url", "event", "id", "attempts",
              "max_attempts", "next_attempt_at", "last_response_status", "last_error",
              "created_at", "completed_at", "signed_by", "retry_schedule",
              "success_status"]  # fmt: skip
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["redeliver"]

    def get_fields(self, request, obj=None):
        """A delivery's page leaves out what it does not have (no target URL beside a
        webhook, no signer or own retry schedule unless it is a job's callback)."""
        empty = {name for name in ("target_url", "signed_by", "retry_schedule", "success_status",
                                   "last_error", "next_attempt_at", "completed_at")
                 if obj is not None and getattr(obj, name) in (None, "", [])}  # fmt: skip
        if obj is not None and obj.webhook_id is None:
            empty.add("webhook")
        return [name for name in self.fields if name not in empty]

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Deliveries", **(extra_context or {})})

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    def get_queryset(self, request):
        last = Attempt.objects.filter(delivery=OuterRef("pk")).order_by("-number")
        return (
            super()
            .get_queryset(request)
            .annotate(last_duration=Subquery(last.values("duration_ms")[:1]))
        )

    @admin.display(description="id", ordering="id")
    def short_id(self, obj: Delivery) -> str:
        return format_html('<code title="{}">{}</code>', obj.id, str(obj.id)[:8])

    @admin.display(description="status", ordering="status")
    def coloured_status(self, obj: Delivery) -> str:
        return status_badge(obj.status, obj.get_status_display(), weight=600)

    @admin.display(description="duration")
    def duration(self, obj: Delivery) -> str:
        ms = getattr(obj, "last_duration", None)
        return "—" if ms is None else f"{ms:.0f} ms"

    @admin.display(description="to")
    def target(self, obj: Delivery) -> str:
        if not obj.webhook_id:
            return obj.target_url
        owner = obj.webhook.owner
        return f"{obj.webhook.name} ({owner.email})" if owner else obj.webhook.name

    def get_urls(self):
        def view(func):
            return self.admin_site.admin_view(partial(func, model_admin=self))

        return [
            path("<uuid:pk>/redeliver/", view(admin_views.redeliver_one),
                 name="hooks_delivery_redeliver"),
            path("search/", view(admin_views.search_deliveries), name="hooks_delivery_search"),
            path("search/retry/", view(admin_views.retry_deliveries),
                 name="hooks_delivery_retry"),
        ] + super().get_urls()  # fmt: skip

    def get_search_results(self, request, queryset, search_term):
        """A UUID is looked up exactly, as a webhook-id or an event id (an index each),
        not matched as text against every row's id."""
        try:
            found = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(Q(pk=found) | Q(event_id=found)), False

    @admin.action(description="Redeliver the selected deliveries…", permissions=["change"])
    def redeliver(self, request, queryset):
        return admin_views.confirm_redeliver(self, request, queryset)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ["id", "webhook", "target_url", "status", "attempts", "last_response_status"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(VoidsRollupOnDelete, admin.ModelAdmin):
    webhooks_of = "deliveries__webhook_id"
    list_display = ["type", "id", "user", "namespace_path", "created_at"]
    list_filter = ["type", "created_at"]  # no date_hierarchy: see DeliveryAdmin
    search_fields = ["id", "type", "namespace"]
    readonly_fields = ["id", "type", "shown_payload", "user", "namespace_path", "created_at",
                       "body_expired_at"]  # fmt: skip
    exclude = ["namespace", "payload"]
    inlines = [DeliveryInline]

    @admin.display(description="payload")
    def shown_payload(self, obj: Event) -> str:
        """Its payload, or when it expired (never an empty one in its place)."""
        if obj.body_expired_at:
            return _expired(obj.body_expired_at)
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.display(description="namespace", ordering="namespace")
    def namespace_path(self, obj: Event) -> str:
        """The namespace by its path, as its owner knows it (its key is its id)."""
        return scopes.namespace_label(obj.namespace) if obj.namespace else "—"

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Events", **(extra_context or {})})

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(DeclaredEventType)
class DeclaredEventTypeAdmin(admin.ModelAdmin):
    """Event types for outside producers (POST /api/v1/events); webhooks subscribe to them
    like to the hub's own once declared here."""

    list_display = ["name", "description", "for_server", "for_users", "for_namespaces"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # Renaming would leave subscribers and stored events under the old name.
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

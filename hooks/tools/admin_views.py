"""Admin pages beyond the model admin: test ping, secret rotation, re-enable, replay,
and the redelivery confirmation.

Each checks the same model permission as the page it belongs to: looking needs the
webhook's view permission, acting (sending, rotating, enabling, replaying) its change
permission; without it the answer is 403 and nothing happens."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from hooks import slots
from hooks.models import Delivery, Webhook
from hooks.tools import configure, ping, redelivery, search, shown
from hooks.tools.forms import ReplayForm, SlotForm
from hooks.worker import alerts, health


def _webhook(request: HttpRequest, model_admin, pk: int, *, change: bool) -> Webhook:
    """The webhook, if the user may see it (and change it, when `change`)."""
    webhook = get_object_or_404(Webhook, pk=pk)
    allowed = (
        model_admin.has_change_permission(request, webhook)
        if change
        else model_admin.has_view_permission(request, webhook)
    )
    if not allowed:
        raise PermissionDenied
    return webhook


def _change_url(webhook: Webhook) -> str:
    return reverse("admin:hooks_webhook_change", args=[webhook.pk])


def _replay_url(webhook: Webhook) -> str:
    return reverse("admin:hooks_webhook_replay", args=[webhook.pk])


@require_POST
def send_test(request: HttpRequest, model_admin, pk: int) -> HttpResponse:
    webhook = _webhook(request, model_admin, pk, change=True)
    since = webhook.failing_since or webhook.disabled_at
    result = ping.send_test(webhook)
    level = messages.SUCCESS if result.ok else messages.ERROR
    text = format_html(
        "Test event to “{}”: {}<pre style='margin:.5em 0 0'>{}</pre>",
        webhook.name,
        result.summary(),
        result.body_preview or "(empty body)",
    )
    model_admin.message_user(request, text, level)
    if result.reenabled:
        model_admin.message_user(
            request,
            format_html(
                "The webhook is enabled again. <a href='{}'>Replay what it missed</a>.",
                _replay_url(webhook) + (f"?since={since:%Y-%m-%d %H:%M:%S}" if since else ""),
            ),
            messages.WARNING,
        )
    return HttpResponseRedirect(_change_url(webhook))


@require_POST
def rotate_secret(request: HttpRequest, model_admin, pk: int) -> HttpResponse:
    webhook = _webhook(request, model_admin, pk, change=True)
    secret = configure.rotate_secret(webhook, by=request.user).new_secret
    model_admin.message_user(
        request, shown.secret_shown_once(webhook.name, secret), messages.WARNING
    )
    return HttpResponseRedirect(_change_url(webhook))


@require_POST
def snooze(request: HttpRequest, model_admin, pk: int) -> HttpResponse:
    """The owner's alert emails snoozed (or on again), from the change page's form."""
    webhook = _webhook(request, model_admin, pk, change=True)
    try:
        model_admin.message_user(
            request, alerts.snooze_from_form(webhook, request.POST.get("days"))
        )
    except ValueError as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
    return HttpResponseRedirect(_change_url(webhook))


@require_POST
def enable(request: HttpRequest, model_admin, pk: int) -> HttpResponse:
    webhook = _webhook(request, model_admin, pk, change=True)
    since = webhook.failing_since or webhook.disabled_at
    health.enable(webhook)
    model_admin.message_user(request, f"“{webhook.name}” is enabled again.", messages.SUCCESS)
    query = f"?since={since:%Y-%m-%d %H:%M:%S}" if since else ""
    return HttpResponseRedirect(_replay_url(webhook) + query)


def replay(request: HttpRequest, model_admin, pk: int) -> HttpResponse:
    """GET: choose a period and see how many (view permission); POST with confirm: queue
    them (change permission)."""
    webhook = _webhook(request, model_admin, pk, change=request.method == "POST")
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = ReplayForm(data)
    count = None
    if form.is_valid():
        selection = redelivery.select(
            webhook=webhook,
            statuses=form.cleaned_data["statuses"],
            since=form.cleaned_data["since"],
            until=form.cleaned_data["until"],
            event_type=form.cleaned_data["event_type"] or None,
        )
        count = selection.count()
        if request.method == "POST" and "confirm" in request.POST:
            queued = redelivery.redeliver_in_batches(selection)
            model_admin.message_user(
                request,
                f"{queued} deliveries of “{webhook.name}” queued for redelivery.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(_change_url(webhook))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Replay deliveries of “{webhook.name}”",
        "webhook": webhook,
        "form": form,
        "count": count,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/hooks/replay.html", context)


def confirm_redeliver(model_admin, request: HttpRequest, queryset) -> HttpResponse | None:
    """The Redeliver action: a page that says how many, then the redelivery itself."""
    if request.POST.get("confirm") == "yes":
        expired = redelivery.expired_among(queryset)
        with transaction.atomic():
            count = redelivery.redeliver(queryset)
        model_admin.message_user(
            request,
            f"{count} deliver{'y' if count == 1 else 'ies'} queued for redelivery.",
            messages.SUCCESS,
        )
        if expired:
            model_admin.message_user(request, _expired_left_out(expired), messages.WARNING)
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Redeliver deliveries?",
        "count": queryset.count(),
        "busy": queryset.filter(claim_token__isnull=False).count(),
        "expired": redelivery.expired_among(queryset),
        "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
        "opts": model_admin.model._meta,
        "action": "redeliver",
    }
    return TemplateResponse(request, "admin/hooks/confirm_redeliver.html", context)


def _expired_left_out(count: int) -> str:
    return (
        f"{count} deliver{'y was' if count == 1 else 'ies were'} not sent again: "
        f"{'its body' if count == 1 else 'their bodies'} expired (WEBHOOK_BODY_RETENTION_DAYS)."
    )


def _extras_form(extras, data):
    form = forms.Form(data, initial={s.name: s.get() for s in extras}, prefix="settings")
    for setting in extras:
        form.fields[setting.name] = setting.field()
        form.fields[setting.name].label = setting.label
    return form


def server_configuration(request: HttpRequest) -> HttpResponse:
    """The named server hooks (signup, queue start, ...): a URL and JSON data each."""
    if not request.user.has_perm("hooks.change_webhook"):
        raise PermissionDenied
    slots.sync_all_env()
    slot_forms = []
    for slot in slots.all_slots():
        hook = slots.webhook(slot.name)
        initial = {"url": hook.url if hook and hook.slot_source == slots.ADMIN else "",
                   "data": hook.data_template if hook else slot.blank_data}  # fmt: skip
        data = request.POST if request.method == "POST" else None
        form = SlotForm(data, initial=initial, prefix=slot.name, blank_data=slot.blank_data)
        slot_forms.append((slot, form, hook))
    extras = slots.all_settings()
    extra_form = _extras_form(extras, request.POST if request.method == "POST" else None)
    valid = extra_form.is_valid() if request.method == "POST" else False
    if request.method == "POST" and valid and all(form.is_valid() for _, form, _ in slot_forms):
        for slot, form, before in slot_forms:
            if form.has_changed():
                after = slots.save(slot.name, form.cleaned_data["url"], form.cleaned_data["data"])
                if after is not None and (before is None or before.url != after.url):
                    configure.announce_change(after, before is None, ["url"], request.user)
        for setting in extras:
            setting.set(extra_form.cleaned_data[setting.name])
        messages.success(request, "Server configuration saved.")
        return HttpResponseRedirect(reverse("hooks_server_configuration"))
    failing = [slot.label for slot, form, _ in slot_forms if form.errors]
    if extras and extra_form.errors:
        failing.append("Settings")
    rows = []
    for slot, form, _ in slot_forms:
        url, source = slots.effective(slot.name)
        rows.append({"slot": slot, "form": form, "hook": slots.webhook(slot.name),
                     "url": url, "source": source})  # fmt: skip
    context = {
        **admin.site.each_context(request),
        "title": "Server configuration: webhooks",
        "rows": rows,
        "extra_form": extra_form if extras else None,
        "failing": failing,
    }
    return TemplateResponse(request, "admin/hooks/server_configuration.html", context)


def redeliver_one(request: HttpRequest, model_admin, pk) -> HttpResponse:
    """The Redeliver button of a delivery's own page: one more attempt, same webhook-id."""
    delivery = get_object_or_404(Delivery, pk=pk)
    if request.method != "POST" or not model_admin.has_change_permission(request):
        raise PermissionDenied
    expired = redelivery.body_expired(delivery)
    if expired:
        model_admin.message_user(request, expired, messages.ERROR)
        return redirect("admin:hooks_delivery_change", delivery.pk)
    with transaction.atomic():
        queued = redelivery.redeliver(Delivery.objects.filter(pk=delivery.pk))
    if queued:
        model_admin.message_user(request, "Queued for redelivery: one more attempt, same webhook-id.",
                                 messages.SUCCESS)  # fmt: skip
    else:
        model_admin.message_user(request, "It is being sent right now; try again in a moment.",
                                 messages.WARNING)  # fmt: skip
    return redirect("admin:hooks_delivery_change", delivery.pk)


def _admin_rows(request: HttpRequest):
    """Each row's page, and Redeliver where the user may change deliveries."""

    def page(d: Delivery) -> str:
        return reverse("admin:hooks_delivery_change", args=[d.pk])

    def again(d: Delivery) -> str:
        return reverse("admin:hooks_delivery_redeliver", args=[d.pk])

    return page, again if request.user.has_perm("hooks.change_delivery") else None


def search_deliveries(request: HttpRequest, model_admin) -> HttpResponse:
    """Every delivery of every webhook, searched (hooks.tools.search), newest first."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    page_url, again = _admin_rows(request)
    found = search.search_results(request.GET, Delivery.objects.all(), page_url, again,
                                  webhooks=Webhook.objects.all())  # fmt: skip
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Search deliveries",
        "found": found,
        "may_retry": model_admin.has_change_permission(request),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/hooks/delivery_search.html", context,
                            status=200 if found.valid else 400)  # fmt: skip


def retry_deliveries(request: HttpRequest, model_admin) -> HttpResponse:
    """Send every delivery a search found again: GET counts (view permission), POST with
    the count shown sends at most that many (change permission)."""
    posted = request.method == "POST"
    allowed = model_admin.has_change_permission(request) if posted else (
        model_admin.has_view_permission(request))  # fmt: skip
    if not allowed:
        raise PermissionDenied
    data = request.POST if posted else request.GET
    plan = search.retry_search(data, Delivery.objects.all(), confirm=posted,
                               webhooks=Webhook.objects.all())  # fmt: skip
    if plan.queued is not None:
        model_admin.message_user(
            request,
            f"{plan.queued} of {plan.count} matching deliveries queued to be sent again "
            "(the same webhook-ids).",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(
            reverse("admin:hooks_delivery_search") + "?" + plan.form.query_string()
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Send deliveries again?",
        "plan": plan,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/hooks/delivery_retry.html", context,
                            status=400 if plan.error else 200)  # fmt: skip


ESTIMATE_ABOVE = 100_000  # rows: below this an exact COUNT is cheap enough


class EstimatedCountPaginator(Paginator):
    """The admin list's paginator without a COUNT(*) of a big unfiltered table: on
    PostgreSQL the planner's row estimate (pg_class.reltuples) stands in for it; a
    filtered list, or SQLite, counts."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if connection.vendor == "postgresql" and query is not None and not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > ESTIMATE_ABOVE:
                return int(row[0])
        return super().count


def admin_recent_deliveries(request: HttpRequest, webhook: Webhook) -> list[shown.DeliveryRow]:
    """A webhook's recent deliveries as its admin page lists them (the same table as the
    owners' pages), with Redeliver where the user may change deliveries."""

    page_url, again = _admin_rows(request)
    return shown.recent_deliveries(webhook, page_url, again)

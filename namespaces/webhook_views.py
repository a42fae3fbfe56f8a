"""A namespace's webhooks, for its owner: the list, create/edit/delete, the recent
deliveries (GitHub's "Recent deliveries"), one delivery with each attempt's request and
response, Redeliver (the same webhook-id) and Send test event."""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

import hooks
from hooks.models import Delivery, Scope, Webhook
from namespaces.access import Need, get_for
from namespaces.forms import NamespaceWebhookForm
from namespaces.views import page
from webhookhub import pages

SHOWN = "namespace-webhook"  # where a just-made secret waits (hooks.keep_shown_once)


def _webhooks(namespace):
    return Webhook.objects.filter(scope=Scope.NAMESPACE, namespace=namespace.key)


def _webhook(request: HttpRequest, path: str, pk: int):
    namespace, role = get_for(request.user, path, Need.MANAGE)
    return namespace, role, get_object_or_404(_webhooks(namespace), pk=pk)


@login_required
@never_cache
def index(request: HttpRequest, path: str) -> HttpResponse:
    namespace, role = get_for(request.user, path, Need.MANAGE)
    last = Delivery.objects.filter(webhook=OuterRef("pk")).order_by("-created_at")
    webhooks = _webhooks(namespace).annotate(
        last_status=Subquery(last.values("status")[:1]),
        last_response=Subquery(last.values("last_response_status")[:1]),
        last_at=Subquery(last.values("created_at")[:1]),
    )
    return page(request, "namespaces/webhooks.html", namespace, role, webhooks=webhooks)


@login_required
@never_cache
def create(request: HttpRequest, path: str) -> HttpResponse:
    namespace, role = get_for(request.user, path, Need.MANAGE)
    form = NamespaceWebhookForm(request.POST or None, namespace=namespace)
    if request.method == "POST" and form.is_valid():
        webhook = form.save(by=request.user)
        if form.saved.new_secret:
            hooks.keep_shown_once(request.session, SHOWN, webhook.pk, form.saved.new_secret)
        messages.success(request, f"Webhook for {webhook.url} created.")
        return redirect("namespaces:webhook", path=namespace.path, pk=webhook.pk)
    return page(request, "namespaces/webhook_form.html", namespace, role,
                 status=400 if form.errors else 200, form=form)  # fmt: skip


@login_required
@never_cache  # shows a new secret once
def detail(request: HttpRequest, path: str, pk: int) -> HttpResponse:
    namespace, role, webhook = _webhook(request, path, pk)
    form = NamespaceWebhookForm(request.POST or None, instance=webhook, namespace=namespace)
    if request.method == "POST" and form.is_valid():
        form.save(by=request.user)
        if form.saved.new_secret:
            hooks.keep_shown_once(request.session, SHOWN, webhook.pk, form.saved.new_secret)
        messages.success(request, "Webhook saved.")
        return redirect("namespaces:webhook", path=namespace.path, pk=webhook.pk)
    return page(request, "namespaces/webhook.html", namespace, role,
                 status=400 if form.errors else 200, webhook=webhook, form=form,
                 deliveries=_recent(namespace, webhook), preview=hooks.filter_preview(webhook),
                 new_secret=hooks.take_shown_once(request.session, SHOWN, webhook.pk),
                 test_result=request.session.pop("webhook_test", None))  # fmt: skip


def _delivery_url(namespace, webhook: Webhook, name: str):
    return lambda d: reverse(f"namespaces:{name}", args=[namespace.path, webhook.pk, d.pk])


def _recent(namespace, webhook: Webhook) -> list[hooks.DeliveryRow]:
    url = partial(_delivery_url, namespace, webhook)
    return hooks.recent_deliveries(webhook, url("delivery"), url("redeliver"))


@login_required
@never_cache
def deliveries(request: HttpRequest, path: str, pk: int) -> HttpResponse:
    """Every delivery of the webhook, searched (hooks.search_results), newest first."""
    namespace, role, webhook = _webhook(request, path, pk)
    url = partial(_delivery_url, namespace, webhook)
    found = hooks.search_results(request.GET, Delivery.objects.filter(webhook=webhook),
                                 url("delivery"), url("redeliver"))  # fmt: skip
    return page(request, "namespaces/deliveries.html", namespace, role,
                status=200 if found.valid else 400, webhook=webhook, found=found)  # fmt: skip


@login_required
@never_cache
def retry_deliveries(request: HttpRequest, path: str, pk: int) -> HttpResponse:
    """Send every delivery a search found again: the count first, then on POST."""
    namespace, role, webhook = _webhook(request, path, pk)
    plan, sent = pages.retry_search(request, Delivery.objects.filter(webhook=webhook))
    back = reverse("namespaces:deliveries", args=[namespace.path, webhook.pk])
    if sent:
        return redirect(f"{back}?{plan.form.query_string()}")
    return page(request, "namespaces/retry.html", namespace, role,
                status=400 if plan.error else 200, webhook=webhook, plan=plan)  # fmt: skip


@login_required
@require_POST
def delete(request: HttpRequest, path: str, pk: int) -> HttpResponse:
    namespace, _, webhook = _webhook(request, path, pk)
    webhook.delete()
    messages.success(request, f"Webhook for {webhook.url} deleted.")
    return redirect("namespaces:webhooks", path=namespace.path)


@login_required
@require_POST
def send_test(request: HttpRequest, path: str, pk: int) -> HttpResponse:
    namespace, _, webhook = _webhook(request, path, pk)
    result = hooks.send_test(webhook)
    request.session["webhook_test"] = {
        "ok": result.ok, "summary": result.summary(), "body": result.body_preview,
        "reenabled": result.reenabled,
    }  # fmt: skip
    return redirect("namespaces:webhook", path=namespace.path, pk=webhook.pk)


@login_required
@require_POST
def snooze(request: HttpRequest, path: str, pk: int) -> HttpResponse:
    """The owner's alert emails about this webhook, snoozed or on again."""
    namespace, _, webhook = _webhook(request, path, pk)
    try:
        messages.success(request, hooks.snooze_from_form(webhook, request.POST.get("days")))
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("namespaces:webhook", path=namespace.path, pk=webhook.pk)


@login_required
@never_cache
def delivery(request: HttpRequest, path: str, pk: int, delivery_id) -> HttpResponse:
    namespace, role, webhook = _webhook(request, path, pk)
    found = get_object_or_404(
        Delivery.objects.select_related("event"), pk=delivery_id, webhook=webhook
    )
    attempts = hooks.delivery_attempts(found)
    return page(request, "namespaces/delivery.html", namespace, role, webhook=webhook,
                delivery=found, attempts=attempts)  # fmt: skip


@login_required
@require_POST
def redeliver(request: HttpRequest, path: str, pk: int, delivery_id) -> HttpResponse:
    namespace, _, webhook = _webhook(request, path, pk)
    found = get_object_or_404(Delivery, pk=delivery_id, webhook=webhook)
    pages.redeliver(request, found, "The delivery")
    return redirect("namespaces:delivery", path=namespace.path, pk=webhook.pk, delivery_id=found.pk)

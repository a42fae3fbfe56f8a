"""Account pages: signup, the settings page (profile, API tokens, notification webhook)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

import hooks
from accounts import notification, presence
from accounts.events import user_webhooks_enabled
from accounts.forms import NotificationWebhookForm, ProfileForm, SignupForm, TokenForm
from accounts.models import ApiToken
from hooks.models import Delivery
from webhookhub import pages

# Where a just-made secret waits for the page that shows it (hooks.keep_shown_once).
SHOWN_TOKEN, SHOWN_WEBHOOK = "api-token", "notification-webhook"


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:settings")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
        login(request, user, backend="accounts.backends.EmailOrUsernameBackend")
        messages.success(request, f"Welcome, {user.display_name}!")
        return redirect("accounts:settings")
    return render(request, "accounts/signup.html", {"form": form})


@require_POST
def presence_beat(request: HttpRequest) -> HttpResponse:
    """An open page's beat (`state=open`) or goodbye (`state=gone`), from presence.js:
    204. A visitor who is not logged in gets 401, a wrong page id or state 400."""
    if not request.user.is_authenticated:
        return HttpResponse("Log in first.", status=401, content_type="text/plain")
    state, page = request.POST.get("state"), request.POST.get("page", "")
    try:
        if state == "open":
            presence.beat(request.user, page, request.session.session_key)
        elif state == "gone":
            presence.gone(request.user, page)
        else:
            return HttpResponse("state is open or gone.", status=400, content_type="text/plain")
    except presence.BadPage as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return HttpResponse(status=204)


def _settings_context(request, **forms) -> dict:
    user = request.user
    hook = notification.webhook_of(user)
    tokens = ApiToken.objects.filter(user=user)
    enabled = user_webhooks_enabled()
    return {
        "profile_form": forms.get("profile_form") or ProfileForm(instance=user),
        "token_form": forms.get("token_form") or TokenForm(user=user),
        "tokens": tokens,
        "new_token": _new_token(request, tokens),
        "user_webhooks_enabled": enabled,
        "webhook": hook,
        "webhook_form": forms.get("webhook_form") or NotificationWebhookForm(user=user),
        "new_secret": hooks.take_shown_once(request.session, SHOWN_WEBHOOK, hook.pk)
        if hook
        else None,
        "test_result": request.session.pop("notification_test", None),
        "deliveries": _recent(hook) if enabled and hook else [],
    }


def _new_token(request, tokens) -> str | None:
    """The token just issued, kept for this page (one at most: issuing redirects here)."""
    found = [hooks.take_shown_once(request.session, SHOWN_TOKEN, token.pk) for token in tokens]
    return next((raw for raw in found if raw), None)


def _delivery_url(name: str):
    return lambda d: reverse(f"accounts:{name}", args=[d.pk])


def _recent(hook) -> list[hooks.DeliveryRow]:
    return hooks.recent_deliveries(
        hook, _delivery_url("delivery"), _delivery_url("redeliver"), limit=20
    )


def _settings_with_errors(request, **forms) -> HttpResponse:
    """The settings page again, with the form that was refused (nothing was saved)."""
    return render(
        request, "accounts/settings.html", _settings_context(request, **forms), status=400
    )


@login_required
@never_cache  # private, and shows a new token or secret once: never stored by anyone
def settings_page(request: HttpRequest) -> HttpResponse:
    form = None
    if request.method == "POST":
        form = ProfileForm(request.POST, instance=request.user)
        if form.is_valid():
            form.save()
            messages.success(request, "Your profile is saved.")
            return redirect("accounts:settings")
    return render(request, "accounts/settings.html", _settings_context(request, profile_form=form))


@login_required
@require_POST
def create_token(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST, user=request.user)
    if not form.is_valid():
        return _settings_with_errors(request, token_form=form)
    token, raw = ApiToken.issue(request.user, form.cleaned_data["name"])
    hooks.keep_shown_once(request.session, SHOWN_TOKEN, token.pk, raw)
    return redirect("accounts:settings")


@login_required
@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.delete()
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:settings")


def _require_user_webhooks() -> None:
    from django.http import Http404

    if not user_webhooks_enabled():
        raise Http404("Notification webhooks are switched off on this hub.")


@login_required
@require_POST
def save_webhook(request: HttpRequest) -> HttpResponse:
    _require_user_webhooks()
    form = NotificationWebhookForm(request.POST, user=request.user)
    if not form.is_valid():
        return _settings_with_errors(request, webhook_form=form)
    hook, secret = form.save()
    if secret:
        hooks.keep_shown_once(request.session, SHOWN_WEBHOOK, hook.pk, secret)
    messages.success(
        request,
        "Notification webhook saved."
        if form.cleaned_data["url"]
        else "Notification webhook removed.",
    )
    return redirect("accounts:settings")


@login_required
@require_POST
def test_webhook(request: HttpRequest) -> HttpResponse:
    _require_user_webhooks()
    hook = notification.webhook_of(request.user)
    if hook is None:
        messages.error(request, "Save a notification webhook URL first.")
        return redirect("accounts:settings")
    result = hooks.send_test(hook)
    request.session["notification_test"] = {
        "ok": result.ok,
        "summary": result.summary(),
        "body": result.body_preview,
    }
    return redirect("accounts:settings")


@login_required
@require_POST
def snooze_alerts(request: HttpRequest) -> HttpResponse:
    """The user's alert emails about their notification webhook, snoozed or on again."""
    hook = notification.webhook_of(request.user)
    if hook is None:
        messages.error(request, "Save a notification webhook URL first.")
        return redirect("accounts:settings")
    try:
        messages.success(request, hooks.snooze_from_form(hook, request.POST.get("days")))
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("accounts:settings")


def _own_delivery(request: HttpRequest, pk) -> Delivery:
    return get_object_or_404(
        Delivery.objects.select_related("event", "webhook"),
        pk=pk, webhook__owner=request.user, webhook__scope="user",
    )  # fmt: skip


def _own_deliveries(request: HttpRequest):
    """The deliveries of the user's own notification webhook (another's never)."""
    return Delivery.objects.filter(webhook__owner=request.user, webhook__scope="user")


@login_required
@never_cache
def deliveries(request: HttpRequest) -> HttpResponse:
    """Every notification delivery, searched (hooks.search_results), newest first."""
    _require_user_webhooks()
    found = hooks.search_results(request.GET, _own_deliveries(request),
                                 _delivery_url("delivery"), _delivery_url("redeliver"))  # fmt: skip
    return render(request, "accounts/deliveries.html", {"found": found},
                  status=200 if found.valid else 400)  # fmt: skip


@login_required
@never_cache
def retry_deliveries(request: HttpRequest) -> HttpResponse:
    """Send every notification delivery a search found again: the count first."""
    _require_user_webhooks()
    plan, sent = pages.retry_search(request, _own_deliveries(request))
    if sent:
        return redirect(f"{reverse('accounts:deliveries')}?{plan.form.query_string()}")
    return render(request, "accounts/retry.html", {"plan": plan},
                  status=400 if plan.error else 200)  # fmt: skip


@login_required
@never_cache
def delivery(request: HttpRequest, pk) -> HttpResponse:
    """One notification delivery: each attempt's request and response."""
    _require_user_webhooks()
    found = _own_delivery(request, pk)
    return render(request, "accounts/delivery.html",
                  {"delivery": found, "attempts": hooks.delivery_attempts(found)})  # fmt: skip


@login_required
@require_POST
def redeliver(request: HttpRequest, pk) -> HttpResponse:
    _require_user_webhooks()
    pages.redeliver(request, _own_delivery(request, pk), "The notification")
    return redirect("accounts:settings")

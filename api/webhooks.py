"""The management API: the webhooks a token's owner may manage (their notification
webhook, the webhooks of namespaces they own; staff with the admin's permissions:
server webhooks), their deliveries with attempts, redelivery, replay, test events and
secret rotation. Creating and changing go through hooks.configure_webhook, as every page
does, so the validation, the URL (SSRF) rules and the secret rules are the pages' own."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from ninja import Router, Status

import hooks
from accounts import notification
from accounts.events import user_webhooks_enabled
from api.schemas import (
    DeliveryOut,
    FeedOut,
    NotificationIn,
    Queued,
    ReplayIn,
    RetryIn,
    RetryOut,
    Rotated,
    TestResult,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)  # fmt: skip
from apikit import bodies
from apikit.errors import ApiError, documented
from hooks.models import Delivery, Scope, Webhook
from namespaces import access
from namespaces.models import Namespace

router = Router(tags=["webhooks"])
ERRORS = documented(400, 401, 403, 404)
PAGE = 50


# --- who may manage what ------------------------------------------------------------
def owned_namespaces(user) -> QuerySet[Namespace]:
    if user.is_superuser:
        return Namespace.objects.all()
    return Namespace.objects.filter(Q(root__isnull=True, owner=user) | Q(root__owner=user))


def may_server(user, action: str) -> bool:
    return user.is_staff and user.has_perm(f"hooks.{action}_webhook")


def manageable(user) -> QuerySet[Webhook]:
    keys = [str(pk) for pk in owned_namespaces(user).values_list("pk", flat=True)]
    mine = Q(scope=Scope.USER, owner=user) | Q(scope=Scope.NAMESPACE, namespace__in=keys)
    if may_server(user, "view"):
        mine |= Q(scope=Scope.SERVER)
    return Webhook.objects.filter(mine).order_by("pk")


def _webhook(request: HttpRequest, pk: int, action: str = "view") -> Webhook:
    """The webhook if the caller may manage it; someone else's is not found either."""
    found = manageable(request.user).filter(pk=pk).first()
    if found is None:
        raise ApiError(f"No webhook {pk} that you manage.", "id", status=404)
    if found.scope == Scope.SERVER and not may_server(request.user, action):
        raise ApiError(f"You may not {action} server webhooks.", status=403)
    return found


def _paths(webhooks: list[Webhook]) -> dict[str, str]:
    keys = {w.namespace for w in webhooks if w.scope == Scope.NAMESPACE}
    return {
        str(pk): path
        for pk, path in Namespace.objects.filter(pk__in=keys).values_list("pk", "path")
    }


def _out(webhook: Webhook, paths: dict[str, str] | None = None) -> dict[str, Any]:
    paths = _paths([webhook]) if paths is None else paths
    return {
        "id": webhook.pk, "scope": webhook.scope, "namespace": paths.get(webhook.namespace),
        "name": webhook.name, "url": webhook.url, "active": webhook.active,
        "disabled": webhook.disabled_at is not None, "disabled_reason": webhook.disabled_reason,
        "events": list(webhook.event_types or []), "payload_filter": webhook.payload_filter,
        "verify_tls": webhook.verify_tls, "follow_redirects": webhook.follow_redirects,
        "rate_limit": webhook.rate_limit, "rate_burst": webhook.rate_burst,
        "max_in_flight": webhook.max_in_flight, "pace": hooks.pace_fields(webhook),
        "ordered": webhook.ordered, "signed": bool(webhook.secret),
        "previous_secret_valid_until": webhook.replaced_secret_until(),
        "created_at": webhook.created_at,
    }  # fmt: skip


def refused(exc: ValidationError) -> ApiError:
    field, messages = next(iter(exc.message_dict.items()))
    return ApiError(f"{field}: {messages[0]}", field)


def secret_change(given: dict[str, Any]) -> hooks.SecretChange:
    """The body's secret_action and secret as one change (a secret alone is pasted)."""
    action, value = given.pop("secret_action", None), given.pop("secret", None) or ""
    return hooks.SecretChange(action or ("paste" if value else "keep"), value)


def _configured(webhook: Webhook, given: dict[str, Any], by) -> Any:
    secret = secret_change(given)  # takes secret_action and secret out of `given`
    changes = {**given, "secret": secret}
    try:
        with transaction.atomic():
            return hooks.configure_webhook(webhook, changes, by)
    except ValidationError as exc:
        raise refused(exc) from None


# --- webhooks -------------------------------------------------------------------------
@router.get("/webhooks", response={200: list[WebhookOut], **ERRORS}, summary="Your webhooks")
def list_webhooks(request: HttpRequest):
    webhooks = list(manageable(request.user))
    paths = _paths(webhooks)
    return [_out(w, paths) for w in webhooks]


@router.post(
    "/webhooks", response={201: WebhookCreated, **ERRORS}, summary="Create a webhook",
    openapi_extra=bodies.doc(WebhookIn),
)  # fmt: skip
def create_webhook(request: HttpRequest):
    given = bodies.validated(WebhookIn, bodies.read(request))
    if given.scope == Scope.NAMESPACE:
        webhook = hooks.new_webhook(Scope.NAMESPACE, namespace=_owned(request, given.namespace).key)
    elif given.scope == Scope.SERVER:
        if not may_server(request.user, "add"):
            raise ApiError("Only staff who may add webhooks create server webhooks.", status=403)
        webhook = hooks.new_webhook(Scope.SERVER)
    else:
        raise ApiError(
            "scope: namespace or server (a notification webhook is set with PUT "
            "/api/v1/notification).", "scope",
        )  # fmt: skip
    changes = given.model_dump(exclude_unset=True, exclude={"scope", "namespace"})
    saved = _configured(
        webhook, {**changes, "url": given.url, "events": given.events}, request.user
    )
    return Status(201, {**_out(saved.webhook), "secret": saved.new_secret or None})


@router.get("/webhooks/{int:pk}", response={200: WebhookOut, **ERRORS}, summary="One webhook")
def get_webhook(request: HttpRequest, pk: int):
    return _out(_webhook(request, pk))


@router.patch(
    "/webhooks/{int:pk}", response={200: WebhookCreated, **ERRORS}, summary="Change a webhook",
    openapi_extra=bodies.doc(WebhookPatch),
)  # fmt: skip
def update_webhook(request: HttpRequest, pk: int):
    webhook = _webhook(request, pk, "change")
    given = bodies.validated(WebhookPatch, bodies.read(request)).model_dump(exclude_unset=True)
    if webhook.scope == Scope.USER:
        raise ApiError("A notification webhook is changed with PUT /api/v1/notification.")
    saved = _configured(webhook, given, request.user)
    return {**_out(saved.webhook), "secret": saved.new_secret or None}


@router.delete("/webhooks/{int:pk}", response={204: None, **ERRORS}, summary="Delete a webhook")
def delete_webhook(request: HttpRequest, pk: int):
    _webhook(request, pk, "delete").delete()
    return HttpResponse(status=204)


def _owned(request: HttpRequest, path: str | None) -> Namespace:
    found = Namespace.objects.select_related("root").filter(path=path or "").first()
    if found is None or access.role(request.user, found) < access.Role.OWNER:
        raise ApiError(f"No namespace {path!r} that you own.", "namespace", status=404)
    return found


# --- deliveries -----------------------------------------------------------------------
def delivery_out(delivery: Delivery) -> dict[str, Any]:
    attempts = sorted(delivery.attempt_set.all(), key=lambda a: a.number)
    return {
        "id": delivery.pk, "webhook": delivery.webhook_id, "event_type": delivery.event.type,
        "event_id": delivery.event_id, "status": delivery.status,
        "last_response_status": delivery.last_response_status, "created_at": delivery.created_at,
        "completed_at": delivery.completed_at,
        "body_expired_at": delivery.event.body_expired_at,
        "attempts": [{f: getattr(a, f) for f in (
            "number", "trigger", "started_at", "duration_ms", "url", "request_headers",
            "request_body", "response_status", "response_headers", "response_body", "error",
            "succeeded", "hops")} for a in attempts],
    }  # fmt: skip


SEARCH_DOC = (
    "Filters, each optional: `status` (repeated or comma-separated: pending, succeeded, "
    "failed, skipped), `event_type`, `since` and `until` (ISO 8601; created at or after, "
    "before), `response_status` (500, a class such as 5xx, or none: no answer), `subject` "
    "(what the events are about: job:<id>, namespace:<name>, user:<id>), `q` (a "
    "webhook-id or an event id). Newest first; the `Next-Cursor` header, when there is a "
    "next page, is passed as `cursor` for it (`before`, a `created_at`, still works)."
)


def _search_data(request: HttpRequest) -> QueryDict:
    """The query string, `status=failed,skipped` read as two statuses."""
    data = request.GET.copy()
    data.setlist("status", [s.strip() for v in data.getlist("status") for s in v.split(",")
                            if s.strip()])  # fmt: skip
    return data


def _searched(form: hooks.SearchForm, base: QuerySet[Delivery]) -> QuerySet[Delivery]:
    if not form.is_valid():
        raise ApiError(*form.first_error())
    return form.search(base)


def _page(request: HttpRequest, deliveries: QuerySet[Delivery], limit: int,
          before: datetime | None, cursor: str | None) -> HttpResponse | list:  # fmt: skip
    if not 1 <= limit <= 200:
        raise ApiError("limit: between 1 and 200.", "limit")
    if before is not None:
        deliveries = deliveries.filter(created_at__lt=before)
    try:
        found = hooks.search_page(deliveries.select_related("event")
                                  .prefetch_related("attempt_set"), cursor, limit)  # fmt: skip
    except ValueError as exc:
        raise ApiError(f"cursor: {exc}", "cursor") from None
    answer = JsonResponse([DeliveryOut.model_validate(delivery_out(d)).model_dump(mode="json")
                           for d in found.deliveries], safe=False)  # fmt: skip
    if found.next_cursor:
        answer["Next-Cursor"] = found.next_cursor
    return answer


@router.get(
    "/webhooks/{int:pk}/deliveries", response={200: list[DeliveryOut], **ERRORS},
    summary="A webhook's deliveries, searched, newest first", description=SEARCH_DOC,
)  # fmt: skip
def list_deliveries(
    request: HttpRequest, pk: int, limit: int = PAGE, before: datetime | None = None,
    cursor: str | None = None, status: str | None = None, event_type: str | None = None,
    since: str | None = None, until: str | None = None, response_status: str | None = None,
    q: str | None = None,
):  # fmt: skip
    webhook = _webhook(request, pk)
    form = hooks.SearchForm(_search_data(request))
    return _page(request, _searched(form, Delivery.objects.filter(webhook=webhook)), limit,
                 before, cursor)  # fmt: skip


def _visible_deliveries(user, action: str = "view") -> QuerySet[Delivery]:
    """The deliveries of the webhooks the caller manages (server webhooks: with the
    admin's `action` permission)."""
    webhooks = manageable(user)
    if not may_server(user, action):
        webhooks = webhooks.exclude(scope=Scope.SERVER)
    return Delivery.objects.filter(webhook__in=webhooks.values("pk"))


@router.get(
    "/deliveries", response={200: list[DeliveryOut], **ERRORS},
    summary="The deliveries of all your webhooks, searched, newest first",
    description=SEARCH_DOC + " `webhook`: one webhook's id.",
)  # fmt: skip
def search_deliveries(
    request: HttpRequest, limit: int = PAGE, cursor: str | None = None,
    webhook: int | None = None, status: str | None = None, event_type: str | None = None,
    since: str | None = None, until: str | None = None, response_status: str | None = None,
    q: str | None = None,
):  # fmt: skip
    form = hooks.SearchForm(_search_data(request), webhooks=manageable(request.user))
    return _page(request, _searched(form, _visible_deliveries(request.user)), limit, None,
                 cursor)  # fmt: skip


def _retry(request: HttpRequest, base: QuerySet[Delivery], webhooks=None):
    given = bodies.validated(RetryIn, bodies.read(request)).model_dump(exclude_none=True)
    if webhooks is None and "webhook" in given:
        raise ApiError("webhook: this webhook's own deliveries are searched here.", "webhook")
    count = given.pop("count", None)
    data = QueryDict(mutable=True)
    for name, value in given.items():
        data.setlist(name, [str(v) for v in value] if isinstance(value, list) else [str(value)])
    if count is not None:
        data["count"] = str(count)
    plan = hooks.retry_search(data, base, confirm=count is not None, webhooks=webhooks)
    if plan.form.errors:
        raise ApiError(*plan.form.first_error())
    if plan.error:
        raise ApiError(plan.error)
    if plan.queued is None:
        return Status(200, {"matching": plan.count, "queued": 0, "dry_run": True})
    return Status(202, {"matching": plan.count, "queued": plan.queued, "dry_run": False})


@router.post(
    "/webhooks/{int:pk}/deliveries/retry", response={200: RetryOut, 202: RetryOut, **ERRORS},
    summary="Send every delivery a search found again (the same webhook-ids)",
    description="Without `count`, a dry run: how many match, nothing sent. With the count "
    "it gave, they are sent again (at most that many, newest first).",
    openapi_extra=bodies.doc(RetryIn),
)  # fmt: skip
def retry_deliveries(request: HttpRequest, pk: int):
    webhook = _webhook(request, pk, "change")
    return _retry(request, Delivery.objects.filter(webhook=webhook))


@router.post(
    "/deliveries/retry", response={200: RetryOut, 202: RetryOut, **ERRORS},
    summary="Send every delivery of your webhooks a search found again",
    description="As POST /webhooks/{id}/deliveries/retry, across your webhooks; `webhook` "
    "narrows it to one.", openapi_extra=bodies.doc(RetryIn),
)  # fmt: skip
def retry_all_deliveries(request: HttpRequest):
    user = request.user
    return _retry(request, _visible_deliveries(user, "change"), webhooks=manageable(user))


def _delivery(webhook: Webhook, delivery_id: str) -> Delivery:
    found = (
        Delivery.objects.filter(webhook=webhook, pk=delivery_id)
        .select_related("event").prefetch_related("attempt_set").first()
    )  # fmt: skip
    if found is None:
        raise ApiError(f"No delivery {delivery_id} of webhook {webhook.pk}.", "id", status=404)
    return found


@router.get(
    "/webhooks/{int:pk}/deliveries/{uuid:delivery_id}", response={200: DeliveryOut, **ERRORS},
    summary="One delivery with its attempts",
)  # fmt: skip
def get_delivery(request: HttpRequest, pk: int, delivery_id: UUID):
    return delivery_out(_delivery(_webhook(request, pk), str(delivery_id)))


@router.get(
    "/webhooks/{int:pk}/feed", response={200: FeedOut, **ERRORS},
    summary="What a webhook was sent, in the order it was made, from a cursor",
)  # fmt: skip
def feed(request: HttpRequest, pk: int, after: str | None = None, limit: int = PAGE):
    """`after`: the `next` of the previous page; `now`: no deliveries, and the cursor of
    the feed's end (to follow it from now on); left out: from the oldest delivery kept."""
    webhook = _webhook(request, pk)
    if not 1 <= limit <= 200:
        raise ApiError("limit: between 1 and 200.", "limit")
    # Signatures made now can be posted to the webhook's receiver: only for a caller who
    # may redeliver to it (staff who may only view a server webhook get none).
    signed = webhook.scope != Scope.SERVER or may_server(request.user, "change")
    try:
        return hooks.read_feed(webhook, after, limit, signed=signed)
    except hooks.BadCursor as exc:
        raise ApiError(str(exc), "after") from None


@router.post(
    "/webhooks/{int:pk}/deliveries/{uuid:delivery_id}/redeliver",
    response={202: Queued, **ERRORS}, summary="Redeliver (the same webhook-id)",
)  # fmt: skip
def redeliver(request: HttpRequest, pk: int, delivery_id: UUID):
    found = _delivery(_webhook(request, pk, "change"), str(delivery_id))
    expired = hooks.body_expired(found)
    if expired:
        raise ApiError(expired, status=410)
    with transaction.atomic():
        queued = hooks.redeliver(Delivery.objects.filter(pk=found.pk))
    if not queued:
        raise ApiError("It is being sent right now; try again in a moment.", status=409)
    return Status(202, {"queued": queued})


@router.post(
    "/webhooks/{int:pk}/replay", response={202: Queued, **ERRORS},
    summary="Send a period's failed and skipped deliveries again",
    openapi_extra=bodies.doc(ReplayIn),
)  # fmt: skip
def replay(request: HttpRequest, pk: int):
    webhook = _webhook(request, pk, "change")
    given = bodies.validated(ReplayIn, bodies.read(request))
    if given.since and given.until and given.since >= given.until:
        raise ApiError("since must be before until.", "since")
    wrong = set(given.statuses) - {"failed", "skipped"}
    if wrong or not given.statuses:
        raise ApiError("statuses: failed and/or skipped.", "statuses")
    queued = hooks.replay(webhook, since=given.since, until=given.until,
                          statuses=given.statuses, event_type=given.event_type)  # fmt: skip
    return Status(202, {"queued": queued})


@router.post("/webhooks/{int:pk}/test", response={200: TestResult, **ERRORS},
             summary="Send a test event now and show the answer")  # fmt: skip
def send_test(request: HttpRequest, pk: int):
    result = hooks.send_test(_webhook(request, pk, "change"))
    attempt = result.attempt
    return {"ok": result.ok, "summary": result.summary(),
            "response_status": attempt.response_status, "response_body": result.body_preview}  # fmt: skip


@router.post("/webhooks/{int:pk}/rotate-secret", response={200: Rotated, **ERRORS},
             summary="A new secret; the old one keeps signing for 24 h")  # fmt: skip
def rotate_secret(request: HttpRequest, pk: int):
    saved = hooks.rotate_secret(_webhook(request, pk, "change"), by=request.user)
    return {"secret": saved.new_secret,
            "previous_valid_until": saved.webhook.previous_secret_expires_at}  # fmt: skip


# --- the caller's notification webhook ------------------------------------------------
@router.put(
    "/notification", response={200: WebhookCreated, 204: None, **ERRORS},
    summary="Set or remove your notification webhook", openapi_extra=bodies.doc(NotificationIn),
)  # fmt: skip
def put_notification(request: HttpRequest):
    given = bodies.validated(NotificationIn, bodies.read(request))
    if not user_webhooks_enabled():
        raise ApiError("Notification webhooks are turned off on this hub.", status=403)
    body = given.model_dump(exclude_unset=True)
    secret = secret_change(body)
    if given.signed is not None and "secret_action" not in body and "secret" not in body:
        secret = notification.signed_change(request.user, given.signed)
    try:
        with transaction.atomic():
            webhook, new_secret = notification.save(
                request.user, given.url.strip(), secret, given.shape, given.events,
                given.follow_redirects, given.ordered,
                {name: body[name] for name in notification.PACE_FIELDS if name in body},
            )  # fmt: skip
    except ValidationError as exc:
        raise refused(exc) from None
    if webhook is None:
        return HttpResponse(status=204)
    return Status(200, {**_out(webhook), "secret": new_secret or None})

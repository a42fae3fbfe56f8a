"""Searching the delivery history, the one definition behind every surface (the admin's
search page, each owner's "All deliveries" page, the management API, `webhooks retry`):
which filters there are, how a bad value is refused, the order (newest first) and the
pages (a keyset cursor, so page 1,000 costs what page 1 does), and sending again
everything a search found.

Each filter is a form field and one entry of FILTERS (field name -> the condition its
cleaned value puts on a Delivery); a filter for another column is those two lines. The
caller gives the deliveries its user may see (`base`): a search narrows them, never
widens them, so tenancy is the caller's queryset and nothing here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode

from hooks import catalog
from hooks.models import Delivery, Webhook
from hooks.outbox import subjects
from hooks.tools import redelivery, shown
from hooks.tools.shown import DeliveryRow

PAGE = 50
RETRY_BATCH = 500  # deliveries queued per transaction (short locks, bounded memory)
# Sent again by one request at most; a larger selection is narrowed first (a period at a
# time). The count is shown before anything is sent, and never more than it are sent.
RETRY_LIMIT = 100_000

_RESPONSE = re.compile(r"^(?:(?P<code>[1-5]\d\d)|(?P<klass>[1-5])xx|(?P<none>none))$")


def _response_condition(value: str) -> Q:
    """`500`, `5xx` (500-599) or `none` (no HTTP answer: a connection error, a timeout)."""
    found = _RESPONSE.match(value)
    if found["code"]:
        return Q(last_response_status=int(found["code"]))
    if found["klass"]:
        low = int(found["klass"]) * 100
        return Q(last_response_status__gte=low, last_response_status__lte=low + 99)
    return Q(last_response_status__isnull=True, attempts__gt=0)


def _status(statuses: list[str]) -> Q:
    # One status as `=`, which the databases match to a partial index on it
    # (delivery_failed_*); SQLite does not match an IN of one value to one.
    return Q(status=statuses[0]) if len(statuses) == 1 else Q(status__in=statuses)


def _lookup(value: uuid.UUID) -> Q:
    """A webhook-id (the delivery's id) or the id of the event it carries."""
    return Q(pk=value) | Q(event_id=value)


# Field name -> the condition its (non-empty) cleaned value puts on the deliveries.
FILTERS: dict[str, Callable[[Any], Q]] = {
    "webhook": lambda webhook: Q(webhook=webhook),
    "status": _status,
    "event_type": lambda name: Q(event__type=name),
    "since": lambda moment: Q(created_at__gte=moment),
    "until": lambda moment: Q(created_at__lt=moment),
    "response_status": _response_condition,
    "subject": lambda subject: Q(event__subject=subject),
    "q": _lookup,
}


class SearchForm(forms.Form):
    """The filters, each optional; a bad value is a field error naming what is expected.
    `webhooks`: the webhooks to choose among (the admin, the API's search of all of a
    caller's webhooks); none on a webhook's own page."""

    webhook = forms.IntegerField(
        required=False, min_value=1, label="Webhook id",
        widget=forms.NumberInput(attrs={"placeholder": "any"}),
    )  # fmt: skip
    status = forms.MultipleChoiceField(
        required=False, label="Status", choices=Delivery.Status.choices, widget=forms.CheckboxSelectMultiple,
        help_text="No box ticked: any status.",
    )  # fmt: skip
    event_type = forms.CharField(required=False, max_length=100, label="Event type")
    since = forms.DateTimeField(
        required=False, label="Since", help_text="Created at or after (YYYY-MM-DD HH:MM, UTC)."
    )
    until = forms.DateTimeField(required=False, label="Until", help_text="Created before.")
    response_status = forms.CharField(
        required=False, max_length=4, label="Response",
        help_text="The last answer's HTTP status: 500, a class (5xx), or none (no answer).",
    )  # fmt: skip
    subject = forms.CharField(
        required=False, max_length=200, label="Subject",
        widget=forms.TextInput(attrs={"placeholder": "job:…, namespace:…, user:…"}),
        help_text="What the events are about: job:<id>, namespace:<name> or user:<id>.",
    )  # fmt: skip
    q = forms.CharField(
        required=False, max_length=40, label="webhook-id or event id",
        widget=forms.TextInput(attrs={"placeholder": "a UUID", "size": 38}),
    )  # fmt: skip

    def __init__(self, data=None, *, webhooks: QuerySet[Webhook] | None = None, **kwargs):
        super().__init__(data, **kwargs)
        self.webhooks = webhooks
        if webhooks is None:
            del self.fields["webhook"]

    def clean_webhook(self) -> Webhook | None:
        pk = self.cleaned_data.get("webhook")
        if pk is None:
            return None
        found = self.webhooks.filter(pk=pk).first()
        if found is None:
            raise ValidationError(f"No webhook {pk} that you may see.")
        return found

    def clean_event_type(self) -> str:
        name = self.cleaned_data["event_type"].strip()
        if name:
            try:
                catalog.check_name(name)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        return name

    def clean_subject(self) -> str:
        value = self.cleaned_data["subject"].strip()
        try:
            return subjects.check(value) or ""
        except (TypeError, ValueError) as exc:
            raise ValidationError(str(exc)) from None

    def clean_response_status(self) -> str:
        value = self.cleaned_data["response_status"].strip().lower()
        if value and not _RESPONSE.match(value):
            raise ValidationError(
                f"{value!r} is not a response status: write 500, a class like 5xx, or none."
            )
        return value

    def clean_q(self) -> uuid.UUID | None:
        value = self.cleaned_data["q"].strip()
        if not value:
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            raise ValidationError(
                f"{value!r} is not a webhook-id or an event id (a UUID such as 3f2b8c1e-…)."
            ) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "'Until' must be after 'since'.")
        return data

    def conditions(self) -> Q:
        """The valid form's filters as one condition (call after is_valid())."""
        condition = Q()
        for name, make in FILTERS.items():
            value = self.cleaned_data.get(name)
            if value not in (None, "", []):
                condition &= make(value)
        return condition

    def search(self, base: QuerySet[Delivery]) -> QuerySet[Delivery]:
        """`base` narrowed by the filters, newest first."""
        return newest_first(base.filter(self.conditions()))

    def is_narrowed(self) -> bool:
        """Whether any filter is set (a valid form)."""
        return bool(self.conditions())

    def given(self) -> list[tuple[str, str]]:
        """The filters as given (name, value), for the next page's link and the hidden
        fields of the "send again" confirmation."""
        data = self.data
        items = data.lists() if hasattr(data, "lists") else ((k, [v]) for k, v in data.items())
        return [(k, v) for k, values in items for v in values if k in self.fields and v != ""]

    def query_string(self) -> str:
        return urlencode(self.given())

    def described(self) -> str:
        """The valid form's filters in words ("status failed, since …"), or "none"."""
        parts = []
        for name in FILTERS:
            value = self.cleaned_data.get(name) if name in self.fields else None
            if value in (None, "", []):
                continue
            shown = ", ".join(value) if isinstance(value, list) else value
            if isinstance(value, datetime):
                shown = f"{value:%Y-%m-%d %H:%M:%S} UTC"
            parts.append(f"{self.fields[name].label or name.replace('_', ' ')}: {shown}")
        return "; ".join(parts) or "none (every delivery)"

    def first_error(self) -> tuple[str, str]:
        """(message, field) of the first error, for the API's one-line answer (field ""
        when no one field is to blame)."""
        field, errors = next(iter(self.errors.items()))
        if field == NON_FIELD_ERRORS:
            return errors[0], ""
        return f"{field}: {errors[0]}", field


def newest_first(deliveries: QuerySet[Delivery]) -> QuerySet[Delivery]:
    # The id breaks ties of equal times, so a cursor never skips or repeats a row.
    return deliveries.order_by("-created_at", "-id")


# --- pages -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    deliveries: list[Delivery]
    next_cursor: str | None  # pass as `cursor` for the next (older) page; None: the last


def cursor_of(delivery: Delivery) -> str:
    return f"{delivery.created_at.isoformat()}_{delivery.pk}"


def parse_cursor(value: str) -> tuple[datetime, uuid.UUID]:
    """A cursor this module made, or a ValueError."""
    moment, _, pk = value.rpartition("_")
    parsed = parse_datetime(moment) if moment else None
    if parsed is None:
        raise ValueError(f"{value!r} is not a page cursor (pass Next-Cursor as given).")
    try:
        return parsed, uuid.UUID(pk)
    except ValueError:
        raise ValueError(f"{value!r} is not a page cursor (pass Next-Cursor as given).") from None


def after_cursor(deliveries: QuerySet[Delivery], cursor: str | None) -> QuerySet[Delivery]:
    """The rows older than the cursor's (newest first). The time bound is its own
    condition, so each index on created_at serves it as a range."""
    if not cursor:
        return deliveries
    moment, pk = parse_cursor(cursor)
    return deliveries.filter(created_at__lte=moment).filter(Q(created_at__lt=moment) | Q(pk__lt=pk))


def search_page(
    deliveries: QuerySet[Delivery], cursor: str | None = None, limit: int = PAGE
) -> Page:
    """One page of a search (newest first) and the cursor of the next; reads one row more
    than it shows to know whether there is a next page (no COUNT of a large history)."""
    rows = list(after_cursor(newest_first(deliveries), cursor)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, cursor_of(rows[-1]) if more and rows else None)


# --- sending again what a search found ------------------------------------------------
class TooMany(ValueError):
    """More deliveries match than one retry sends (RETRY_LIMIT)."""


def count_for_retry(deliveries: QuerySet[Delivery]) -> int:
    """How many match (what is shown before sending), or TooMany. Counts at most one
    more than the limit, so a huge match is refused without counting all of it."""
    found = deliveries.order_by()[: RETRY_LIMIT + 1].count()
    if found > RETRY_LIMIT:
        raise TooMany(
            f"More than {RETRY_LIMIT:,} deliveries match; narrow the search (a shorter "
            "period, a webhook, a status) and send them again a part at a time."
        )
    return found


def _batches(deliveries: QuerySet[Delivery], up_to: int, batch: int) -> Iterator[list]:
    """The matching ids, newest first, `batch` at a time and `up_to` in all. Walks with
    the page cursor, so a redelivered row (failed, now pending) is behind it and neither
    lost nor sent twice, and only one batch of ids is in memory at once."""
    cursor, left = None, up_to
    while left > 0:
        found = search_page(deliveries.only("pk", "created_at"), cursor, min(batch, left))
        if not found.deliveries:
            return
        yield [d.pk for d in found.deliveries]
        left -= len(found.deliveries)
        if found.next_cursor is None:
            return
        cursor = found.next_cursor


def retry_matching(
    deliveries: QuerySet[Delivery],
    up_to: int,
    *,
    batch: int = RETRY_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Send again (the same webhook-ids: redelivery) at most `up_to` of the matching
    deliveries, newest first: the count shown to the person who confirmed, so a search
    that matches more by now does not send more. One transaction per batch; returns how
    many were queued (one a worker is sending right now is left alone)."""
    queued = done = 0
    for ids in _batches(deliveries, min(up_to, RETRY_LIMIT), batch):
        with transaction.atomic():
            queued += redelivery.redeliver(Delivery.objects.filter(pk__in=ids))
        done += len(ids)
        if progress:
            progress(done, up_to)
    return queued


# --- what the pages share --------------------------------------------------------------
@dataclass
class Results:
    """A search page's content: the form (with its errors), one page of rows, and the
    query of the next page (None: this is the last)."""

    form: SearchForm
    rows: list[DeliveryRow]
    next_query: str | None

    @property
    def valid(self) -> bool:
        return not self.form.errors


def search_results(
    data,
    base: QuerySet[Delivery],
    page_url: Callable[[Delivery], str],
    redeliver_url: Callable[[Delivery], str] | None = None,
    *,
    webhooks: QuerySet[Webhook] | None = None,
    limit: int = PAGE,
) -> Results:
    """A page of the deliveries of `base` that match the filters in `data` (a GET), with
    `cursor` for a later page. Invalid filters: the form's errors and no rows."""
    form = SearchForm(data, webhooks=webhooks)
    if not form.is_valid():
        return Results(form, [], None)
    try:
        found = search_page(shown.with_last_attempt(form.search(base)), data.get("cursor"), limit)
    except ValueError as exc:  # a cursor not made here
        form.add_error(None, str(exc))
        return Results(form, [], None)
    rows = shown.delivery_rows(found.deliveries, page_url, redeliver_url)
    following = None
    if found.next_cursor:
        following = urlencode([*form.given(), ("cursor", found.next_cursor)])
    return Results(form, rows, following)


@dataclass
class Retry:
    """ "Send again everything that matches": first the count (`count`, nothing sent),
    then, confirmed with that count, what was queued (`queued`). `error`: why not."""

    form: SearchForm
    count: int | None = None
    queued: int | None = None
    error: str | None = None


def retry_search(
    data, base: QuerySet[Delivery], *, confirm: bool, webhooks: QuerySet[Webhook] | None = None
) -> Retry:
    """Without `confirm` (a GET, a dry run): how many match. With it (a POST carrying the
    `count` shown): send them again, at most that many, the same webhook-ids."""
    form = SearchForm(data, webhooks=webhooks)
    if not form.is_valid():
        return Retry(form, error="The search has errors: nothing was sent.")
    matching = form.search(base)
    try:
        count = count_for_retry(matching)
    except TooMany as exc:
        return Retry(form, error=str(exc))
    if not confirm:
        return Retry(form, count=count)
    shown_count = str(data.get("count", ""))
    if not shown_count.isdigit():
        return Retry(form, count=count, error="Confirm the number of deliveries shown first.")
    return Retry(form, count=count, queued=retry_matching(matching, int(shown_count)))

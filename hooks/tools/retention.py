"""History retention: old events and their deliveries and attempts are pruned in batches,
so no single transaction holds the database for long."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from hooks import conf
from hooks.models import Delivery, Event

BATCH = 500


def prunable(older_than: datetime):
    """Events created before `older_than` whose deliveries are all finished."""
    unfinished = Delivery.objects.filter(event=OuterRef("pk"), status=Delivery.Status.PENDING)
    return Event.objects.filter(created_at__lt=older_than).exclude(Exists(unfinished))


def prune(older_than: datetime, batch: int = BATCH, progress=None) -> dict[str, int]:
    """Delete those events with their deliveries and attempts, a batch per transaction;
    returns how many rows of each kind went. `progress(done, None)` after each batch."""
    candidates = prunable(older_than)
    deleted: dict[str, int] = {"events": 0, "deliveries": 0, "attempts": 0}
    while True:
        with transaction.atomic():
            ids = list(candidates.values_list("pk", flat=True)[:batch])
            if not ids:
                return deleted
            _, per_model = Event.objects.filter(pk__in=ids).delete()
        deleted["events"] += per_model.get("hooks.Event", 0)
        deleted["deliveries"] += per_model.get("hooks.Delivery", 0)
        deleted["attempts"] += per_model.get("hooks.Attempt", 0)
        if progress:
            progress(deleted["events"], None)


def prune_by_setting(now: datetime | None = None) -> int:
    """The daily task: keep WEBHOOK_HISTORY_DAYS of history (0 keeps everything)."""
    days = conf.get().history_days
    if days <= 0:
        return 0
    return prune((now or timezone.now()) - timedelta(days=days))["events"]

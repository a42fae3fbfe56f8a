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


def prune(older_than: datetime, batch: int = BATCH) -> int:
    """Delete events created before `older_than` whose deliveries are all finished."""
    unfinished = Delivery.objects.filter(event=OuterRef("pk"), status=Delivery.Status.PENDING)
    candidates = Event.objects.filter(created_at__lt=older_than).exclude(Exists(unfinished))
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(candidates.values_list("pk", flat=True)[:batch])
            if not ids:
                return deleted
            Event.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


def prune_by_setting(now: datetime | None = None) -> int:
    """The daily task: keep WEBHOOK_HISTORY_DAYS of history (0 keeps everything)."""
    days = conf.get().history_days
    if days <= 0:
        return 0
    return prune((now or timezone.now()) - timedelta(days=days))

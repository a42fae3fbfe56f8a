"""A namespace's cron jobs as django-q2 schedules: each Cron has one CRON schedule that
calls `jobs.scheduled.run_cron` (named by path: the job side imports this app, not the
other way round). Any cluster's scheduler may pick it up; the job it submits runs on
the job workers."""

from __future__ import annotations

from datetime import datetime

from croniter import croniter
from django.utils import timezone
from django_q.models import Schedule

from namespaces.models import Cron

FUNC = "jobs.scheduled.run_cron"


def next_after(expression: str, moment: datetime | None = None) -> datetime:
    return croniter(expression, timezone.localtime(moment or timezone.now())).get_next(datetime)


def sync(cron: Cron) -> Cron:
    """Create or correct the schedule of `cron` (call in the transaction that saved it)."""
    fields = {"func": FUNC, "args": str(cron.pk), "schedule_type": Schedule.CRON,
              "cron": cron.cron, "repeats": -1, "next_run": next_after(cron.cron),
              "name": f"namespace cron {cron.pk}"}  # fmt: skip
    if cron.schedule_id:
        Schedule.objects.filter(pk=cron.schedule_id).update(**fields)
        cron.schedule.refresh_from_db()
    else:
        cron.schedule = Schedule.objects.create(**fields)
        Cron.objects.filter(pk=cron.pk).update(schedule=cron.schedule)
    return cron


def drop(sender, instance: Cron, **kwargs) -> None:
    """post_delete: a deleted cron's schedule goes with it."""
    if instance.schedule_id:
        Schedule.objects.filter(pk=instance.schedule_id).delete()

"""The periodic django-q2 tasks of the engine, kept in the database after every migrate."""

from __future__ import annotations

SWEEP = "webhookhub: sweep deliveries"
PRUNE = "webhookhub: prune history"


def ensure(**kwargs) -> None:
    """Create or correct the schedules (idempotent; runs on post_migrate)."""
    # Imported here: this module is wired up while apps load, before models can be.
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SWEEP,
        defaults={
            "func": "hooks.worker.tasks.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    Schedule.objects.update_or_create(
        name=PRUNE,
        defaults={
            "func": "hooks.tools.retention.prune_by_setting",
            "schedule_type": Schedule.DAILY,
            "repeats": -1,
        },
    )

"""The periodic django-q2 tasks of the engine, kept in the database after every migrate."""

from __future__ import annotations

SWEEP = "webhookhub: sweep deliveries"


def ensure(**kwargs) -> None:
    """Create or correct the schedules (idempotent; runs on post_migrate)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SWEEP,
        defaults={
            "func": "hooks.tasks.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )

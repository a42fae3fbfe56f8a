"""django-q2 glue: the tasks the delivery cluster runs. The work itself lives elsewhere."""

from __future__ import annotations

from hooks.worker import sweeper
from hooks.worker.pump import Pump


def pump(ids: list[str]) -> int:
    """The pump task: send these deliveries (those still due and unclaimed), then keep
    claiming whatever else is due until nothing is left or its time is up."""
    return Pump().drain(ids or None)


def sweep() -> int:
    """Scheduled every minute (hooks.worker.schedules)."""
    return sweeper.sweep()

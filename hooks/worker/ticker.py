"""The delivery cluster's clock: due deliveries that no broker task holds go to the
broker at least every second, and at the moment the next one falls due when that is
sooner, so a retry leaves within milliseconds of its due time and a dead worker's
claims are picked up as soon as their lease runs out.

It runs in the main process of `manage.py qcluster` (which only waits for its
sentinel otherwise), so it takes no worker from the pool. Each tick is one indexed
SELECT on (status, next_attempt_at) when nothing is due, and one more for when the
next one is. The once-a-minute sweeper stays the safety net, for clusters that run
without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError, connection
from django.utils import timezone

from hooks.worker import stopping, sweeper

log = logging.getLogger("hooks.ticker")

TICK = 1.0  # seconds between looks at the table, at most
SOONEST = 0.005  # ... and at least (a retry due now is handed over at once anyway)


class Ticker:
    """Hands due deliveries over once per tick; rides out database and broker outages
    (logged once each, then quiet until they are over)."""

    def __init__(self) -> None:
        self.failing: str | None = None

    def tick(self) -> int:
        try:
            handed = sweeper.enqueue_due()
        except DatabaseError as exc:
            self._failed("database", exc)
            connection.close()  # reconnect at the next tick
            return 0
        except Exception as exc:  # the broker's client raises its own errors
            self._failed("broker", exc)
            return 0
        if self.failing:
            log.info("The %s is back; handing due deliveries over again.", self.failing)
            self.failing = None
        return handed

    def _failed(self, what: str, exc: Exception) -> None:
        if self.failing != what:
            log.warning(
                "Could not hand due deliveries over (%s: %s: %s); trying every %g s.",
                what, type(exc).__name__, exc, TICK,
            )  # fmt: skip
            self.failing = what

    def pause(self) -> float:
        """Seconds until the next look: a TICK, or less when a delivery falls due sooner
        (a retry scheduled meanwhile is seen at the next look, at most a TICK later)."""
        try:
            now = timezone.now()
            upcoming = sweeper.next_due(now)
        except DatabaseError:
            connection.close()
            return TICK
        if upcoming is None:
            return TICK
        return min(max((upcoming - now).total_seconds(), SOONEST), TICK)

    def run(self, alive: Callable[[], bool] = lambda: True) -> None:
        """Tick until a stop is requested or `alive()` says the cluster is gone."""
        while alive() and not stopping.cluster_stopping():
            self.tick()
            stopping.wait(self.pause())
        connection.close()

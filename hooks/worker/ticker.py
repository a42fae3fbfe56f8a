"""The delivery cluster's clock: every second, due deliveries that no broker task holds
go to the broker, so a retry leaves within about a second of its due time and a dead
worker's claims are picked up as soon as their lease runs out.

It runs in the main process of `manage.py qcluster` (which only waits for its
sentinel otherwise), so it takes no worker from the pool. Each tick is one indexed
SELECT on (status, next_attempt_at) when nothing is due. The once-a-minute sweeper
stays the safety net, for clusters that run without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import DatabaseError, connection

from hooks.worker import stopping, sweeper

log = logging.getLogger("hooks.ticker")

TICK = 1.0  # seconds between looks at the table


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

    def run(self, alive: Callable[[], bool] = lambda: True) -> None:
        """Tick until a stop is requested or `alive()` says the cluster is gone."""
        while alive() and not stopping.requested():
            started = time.monotonic()
            self.tick()
            stopping.wait(max(TICK - (time.monotonic() - started), 0.0))
        connection.close()

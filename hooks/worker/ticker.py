"""The delivery cluster's clock: due deliveries that no broker task holds go to the
broker at least every second, and at the moment the next one falls due when that is
sooner, so a retry leaves within milliseconds of its due time and a dead worker's
claims are picked up as soon as their lease runs out.

It also starts the pumps owed to paced webhooks (hooks.worker.pacing): a pump that
ends while a paced webhook's deliveries wait for a later token leaves a wake-up time
on its bucket and pokes the ticker (a Unix socket, hooks.worker.wakeup), which sleeps
until then and hands the broker a pump.

It runs in the main process of `manage.py qcluster` (which only waits for its
sentinel otherwise), so it takes no worker from the pool. Each tick is one indexed
SELECT on (status, next_attempt_at) when nothing is due, one more for when the
next one is, and one on the small table of paced webhooks' buckets for wake-ups. The
once-a-minute sweeper stays the safety net, for clusters that run without it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from django.db import DatabaseError, connection
from django.utils import timezone

from hooks.worker import pacing, stopping, sweeper, wakeup

log = logging.getLogger("hooks.ticker")

TICK = 1.0  # seconds between looks at the table, at most
SOONEST = 0.005  # ... and at least (a retry due now is handed over at once anyway)


class Ticker:
    """Hands due deliveries over once per tick; rides out database and broker outages
    (logged once each, then quiet until they are over)."""

    def __init__(self) -> None:
        self.failing: str | None = None
        self.listener: wakeup.Listener | None = None

    def tick(self) -> int:
        try:
            handed = sweeper.enqueue_due() + pacing.wake_due()
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
            times = [sweeper.next_due(now), pacing.next_wake()]
        except DatabaseError:
            connection.close()
            return TICK
        upcoming = min((t for t in times if t is not None), default=None)
        if upcoming is None:
            return TICK
        return min(max((upcoming - now).total_seconds(), SOONEST), TICK)

    def sleep(self, seconds: float) -> None:
        """Up to `seconds`: less when a stop is requested (within stopping.SLICE) or a
        pump pokes the ticker about a new wake-up (at once)."""
        if self.listener is None:
            stopping.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not stopping.cluster_stopping():
            left = deadline - time.monotonic()
            if left <= 0 or self.listener.wait(min(stopping.SLICE, left)):
                return

    def run(self, alive: Callable[[], bool] = lambda: True) -> None:
        """Tick until a stop is requested or `alive()` says the cluster is gone."""
        try:
            self.listener = wakeup.Listener(pacing.TICKER)
        except OSError as exc:  # no socket: wake-ups wait for the next tick instead
            log.warning("No wake-up socket for the ticker (%s); ticking every %g s.", exc, TICK)
        try:
            while alive() and not stopping.cluster_stopping():
                self.tick()
                self.sleep(self.pause())
        finally:
            if self.listener is not None:
                with contextlib.suppress(OSError):
                    self.listener.close()
            connection.close()

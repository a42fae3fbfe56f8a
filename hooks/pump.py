"""The pump: one worker task keeps many deliveries in flight and keeps claiming more
until nothing is due, so throughput does not hinge on one broker task per delivery.

A slow endpoint cannot hold up the rest: each endpoint (webhook, or explicit URL)
has a bounded number of deliveries in flight per process, an endpoint at its bound
is left out of further claims, and results are recorded as they arrive (in small
batches), not when a whole batch is done.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from functools import partial

from django.utils import timezone

from hooks import claims, conf, delivery, outbox, transport
from hooks.delivery import Sent
from hooks.models import Delivery

log = logging.getLogger("hooks.pump")

FLUSH_EVERY = 0.05  # seconds: the longest a finished attempt waits to be recorded
FLUSH_SIZE = 64


def endpoint(d: Delivery):
    return d.webhook_id or d.target_url


class Pump:
    def __init__(self, settings: conf.HookSettings | None = None):
        self.settings = settings or conf.get()
        self.capacity = self.settings.send_threads
        self.limit = self.settings.max_in_flight_per_endpoint
        self.send = partial(
            transport.send,
            allowed=self.settings.allowed_networks,
            body_cap=self.settings.response_body_cap,
        )
        self.in_flight: dict[Future, tuple] = {}
        self.waiting: dict[object, deque] = defaultdict(deque)
        self.flying = Counter()  # endpoint -> requests in flight
        self.held = Counter()  # endpoint -> in flight + waiting here
        self.finished: list[Sent] = []
        self.recorded = 0
        self.last_flush = time.monotonic()

    # -- claiming -------------------------------------------------------------
    def holding(self) -> int:
        return sum(self.held.values())

    def saturated(self) -> list:
        return [k for k, n in self.held.items() if n >= self.limit and isinstance(k, int)]

    def refill(self, ids: list | None) -> int:
        room = self.capacity - self.holding()
        if room <= 0:
            return 0
        token, batch = claims.claim(
            ids, room, self.settings.claim_lease, exclude_webhooks=self.saturated()
        )
        ready, broken = delivery.prepare(batch, token, self.settings, timezone.now())
        self.finished.extend(broken)
        for d, request in ready:
            key = endpoint(d)
            self.held[key] += 1
            self.waiting[key].append((d, token, request))
        self.launch()
        return len(batch)

    # -- sending --------------------------------------------------------------
    def launch(self) -> None:
        pool = delivery.executor(self.settings.send_threads)
        for key, queue in self.waiting.items():
            while queue and self.flying[key] < self.limit and len(self.in_flight) < self.capacity:
                d, token, request = queue.popleft()
                self.flying[key] += 1
                self.in_flight[pool.submit(self.send, request)] = (d, token, request)

    def collect(self, timeout: float) -> None:
        if not self.in_flight:
            return
        done, _ = wait(list(self.in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            d, token, request = self.in_flight.pop(future)
            key = endpoint(d)
            self.flying[key] -= 1
            self.held[key] -= 1
            if not self.held[key]:
                del self.held[key]
            self.finished.append(Sent(d, token, request, future.result()))
        self.launch()

    def flush(self, force: bool = False) -> None:
        due = time.monotonic() - self.last_flush >= FLUSH_EVERY
        if self.finished and (force or due or len(self.finished) >= FLUSH_SIZE):
            batch, self.finished = self.finished, []
            delivery.record_many(batch)
            self.recorded += len(batch)
            self.last_flush = time.monotonic()

    # -- the loop -------------------------------------------------------------
    def drain(self, ids: list | None = None, budget: float | None = None) -> int:
        """Deliver `ids` and whatever else falls due, until nothing is left or the budget
        is spent; then let what is in flight land. Returns how many were recorded."""
        deadline = time.monotonic() + (budget if budget is not None else self.settings.pump_seconds)
        claiming, first = True, True
        while True:
            if claiming and time.monotonic() < deadline and self.holding() <= self.capacity // 2:
                got = self.refill(ids)
                if first and got >= self.capacity:
                    outbox.enqueue_pump()  # more work than one pump: bring a helper
                ids, first = None, False
                claiming = got > 0 or bool(self.saturated())
            if not self.in_flight and not any(self.waiting.values()):
                if not claiming or time.monotonic() >= deadline:
                    break
                time.sleep(FLUSH_EVERY)  # only waiting on saturated endpoints' queues
            self.collect(timeout=FLUSH_EVERY)
            self.flush()
        self.flush(force=True)
        if claiming and claims.due(timezone.now()).exists():
            outbox.enqueue_pump()  # budget spent with work left: continue in a fresh task
        return self.recorded

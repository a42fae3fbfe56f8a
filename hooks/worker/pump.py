"""The pump: one worker task keeps many deliveries in flight and keeps claiming more
until nothing is due, so throughput does not hinge on one broker task per delivery.

It only schedules: each attempt is `attempt.attempt()` (build → send) on a sender
thread, and `recording.write()` (record → decide) in the pump's write transaction,
together with its next claim.

A slow or dead endpoint cannot hold up the rest:
- each endpoint (webhook, or explicit URL) has a bound on requests in flight per
  process: it starts small, doubles with each answer up to
  WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT, and drops to one while the endpoint times out
  or refuses connections (kept per worker process, so it carries over from one
  pump task to the next);
- an endpoint at its bound is left out of further claims (a stalling one as soon as
  its one request is out); what a claim brings for a stalling endpoint beyond that
  request, and what waits here for it when it times out, goes back to the table, due
  a little later, with no attempt counted;
- a stalling endpoint's request runs on a reserve of threads and does not count
  against the pump's capacity, so the endpoints that answer keep all of it;
- results are recorded as they arrive, in small batches;
- a paced webhook (hooks.worker.pacing: a rate and burst, a most in flight, or a
  pause its receiver asked for) is claimed apart, within its shared bucket, at each
  token while the pump has other work; with nothing else in flight the pump waits
  only for a token that comes within PACE_HORIZON, and otherwise ends, leaving the
  ticker to wake a pump for it: no worker sits idle waiting for a token. What waits
  here for a webhook whose receiver answered 429/503 with Retry-After goes back.

It holds its claims on a short lease (WEBHOOK_CLAIM_LEASE) and renews them while it
holds the deliveries, so a pump that dies gives them up within the lease. It rides out
a database outage (writes are retried with backoff for up to WRITE_OUTAGE seconds),
and when its cluster stops it claims nothing more, lets what is in flight land and
gives back what has not gone out.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter, defaultdict, deque
from datetime import datetime, timedelta
from functools import partial
from queue import Empty, SimpleQueue

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from hooks import conf, logsafe, metrics, process
from hooks.models import Delivery
from hooks.outbox.handover import enqueue_pump, unmark
from hooks.outgoing import transport
from hooks.worker import (
    claims,
    journal,
    order,
    pacing,
    recording,
    retry,
    stopping,
    threads,
    writelock,
)
from hooks.worker.attempt import attempt, send
from hooks.worker.recording import Sent

log = logging.getLogger("hooks.pump")

FLUSH_EVERY = 0.2  # seconds: the longest a finished attempt waits to be recorded
FLUSH_SIZE = 128
RELEASE_DELAY = timedelta(seconds=5)  # released deliveries of a stalling endpoint wait this long
WINDOW = 2  # claim up to this many times what can be in flight: bigger, fewer batches
# A write that fails for a transient reason (deadlock, lock timeout, the database
# restarting) is tried again, backing off from the first to the last delay, for up to
# WRITE_OUTAGE seconds in all; then the pump gives up and its claims lapse.
WRITE_BACKOFF = (0.05, 2.0)
WRITE_OUTAGE = 60.0
RENEWALS_PER_LEASE = 5  # a live pump renews its claims this often per lease
FIRST_BOUND = 2  # slow start: an endpoint we know nothing about gets this many at first


def endpoint(d: Delivery):
    return d.webhook_id or d.target_url


def stalled(result: transport.Result) -> bool:
    """No answer at all (timeout, refused, reset): the endpoint ties up our threads."""
    return result.status is None


class Pump:
    """Schedules attempts; `attempt()` and `recording.write()` do the work."""

    def __init__(self, settings: conf.HookSettings | None = None):
        self.settings = settings or conf.settings()
        self.threads = self.settings.send_threads
        self.reserve = threads.stall_reserve(self.threads)
        self.capacity = WINDOW * self.threads  # claimed and held here, sent or waiting
        self.max_bound = self.settings.max_in_flight_per_endpoint
        self.send = partial(send, settings=self.settings)
        # What this process learnt about endpoints outlives one pump task.
        state = process.current()
        self.bounds: dict[object, int] = state.endpoint_bounds
        self.stalling: set = state.stalling
        self.in_flight: dict[threads.Job, tuple] = {}
        # Jobs land here as they finish: waiting on this queue costs the same however
        # many are in flight.
        self.landed: SimpleQueue[threads.Job] = SimpleQueue()
        self.waiting: dict[object, deque] = defaultdict(deque)
        self.flying = Counter()  # endpoint -> requests in flight
        self.on_reserve: set[threads.Job] = set()  # in flight to stalling endpoints
        self.finished: list[Sent] = []
        # Each request and its answer go to the journal as they happen: a worker killed
        # before the batch is recorded leaves the answers to the next pump, not to a
        # re-send (hooks.worker.journal).
        self.journal = journal.Journal(self.settings.max_payload_bytes)
        self.recorded = 0
        self.last_flush = time.monotonic()
        self.renew_every = self.settings.claim_lease / RENEWALS_PER_LEASE
        self.last_renewal = time.monotonic()
        self.stopped = False
        # Paced webhooks: when (monotonic) to look at each again, those of them with
        # due deliveries waiting for a token, a pause or room in flight, and of those
        # the ones waiting for a time (a token, a pause): owed a wake-up if this ends.
        self.look_again: dict[int, float] = {}
        self.paced_waiting: set[int] = set()
        self.paced_wakes: dict[int, datetime] = {}
        self.released = 0  # held deliveries its records let go (hooks.worker.order)
        self.ending = False  # its last record: no claim follows it

    def bound(self, key) -> int:
        return min(self.bounds.get(key, FIRST_BOUND), self.max_bound)

    # -- claiming -------------------------------------------------------------
    def holding(self) -> int:
        """Claimed here and not yet landed, leaving out the requests out on the stall
        reserve: they have threads of their own, and a pump that counted them would
        keep fewer requests going to the endpoints that answer."""
        waiting = sum(len(queue) for queue in self.waiting.values())
        return len(self.in_flight) - len(self.on_reserve) + waiting

    def held(self, key) -> int:
        """What this pump may hold for an endpoint, in flight or waiting: a full bound and
        as many again; a stalling endpoint only its one request (what waits behind it
        would be given back when it times out)."""
        return self.bound(key) if key in self.stalling else WINDOW * self.bound(key)

    def saturated(self) -> list:
        """Webhooks this pump holds enough for: claiming more for them would only make
        them wait longer."""
        keys = set(self.flying) | {key for key, queue in self.waiting.items() if queue}
        return [
            key
            for key in keys
            if isinstance(key, int) and self.flying[key] + len(self.waiting[key]) >= self.held(key)
        ]

    def refill(self, ids: list | None) -> int:
        """Record what has landed and claim more."""
        room = self.capacity - self.holding()
        if room <= 0:
            self.write()
            return 0
        batch = self.write(claim=room, ids=ids)
        for d, token in batch:
            self.waiting[endpoint(d)].append((d, token))
        self.launch()
        return len(batch)

    def paced_due(self, now: float | None = None) -> list[int]:
        """The paced webhooks to look at in this claim (less those this pump holds
        enough for)."""
        now = time.monotonic() if now is None else now
        saturated = set(self.saturated())
        return [
            key
            for key in pacing.paced()
            if key not in saturated and self.look_again.get(key, 0.0) <= now
        ]

    def paced_wait(self) -> float | None:
        """Seconds until a paced webhook with due deliveries may send again (none
        waits: None)."""
        if not self.paced_waiting:
            return None
        soonest = min(self.look_again.get(key, 0.0) for key in self.paced_waiting)
        return max(soonest - time.monotonic(), 0.0)

    def learned_paces(self, taken: pacing.Taken | None, looked: list[int]) -> None:
        """After a claim's commit: when to look at the paced webhooks again."""
        for key in looked:
            self.look_again.pop(key, None)
            self.paced_waiting.discard(key)
            self.paced_wakes.pop(key, None)
        if taken is not None:
            self.look_again.update(taken.look_again)
            self.paced_waiting |= taken.waiting
            self.paced_wakes.update(taken.wakes)

    # -- sending --------------------------------------------------------------
    def has_thread(self, key) -> bool:
        """A stalling endpoint sends on the reserve, the others on the main threads."""
        if key in self.stalling:
            return len(self.on_reserve) < self.reserve
        return len(self.in_flight) - len(self.on_reserve) < self.threads

    def launch(self) -> None:
        pool = threads.senders(self.settings.send_threads)
        for key, queue in self.waiting.items():
            while queue and self.flying[key] < self.bound(key) and self.has_thread(key):
                d, token = queue.popleft()
                self.flying[key] += 1
                job = pool.submit(self.attempt, d, token, landed=self.landed)
                self.in_flight[job] = (d, token)
                if key in self.stalling:
                    self.on_reserve.add(job)

    def attempt(self, d: Delivery, token) -> Sent:
        """On a sender thread: build and send (`attempt.attempt`), and journal the
        answer at once (hooks.worker.journal)."""
        self.journal.sending(d)
        sent = attempt(d, token, self.settings, self.send)
        self.journal.append(sent)
        return sent

    def learn(self, key, result: transport.Result) -> None:
        if stalled(result):
            if self.bound(key) > 1:
                log.info("Endpoint %s stalls; one request at a time until it answers.",
                         logsafe.endpoint(key))  # fmt: skip
            self.bounds[key] = 1
            self.stalling.add(key)
            self.release(key)
            return
        self.stalling.discard(key)
        if self.bound(key) < self.max_bound:
            self.bounds[key] = min(self.bound(key) * 2, self.max_bound)

    def release(self, key, delay: timedelta = RELEASE_DELAY) -> None:
        """Give back what waits here for a stalling endpoint (others may go first), or
        for a webhook its receiver paused (due when the pause ends)."""
        queue = self.waiting.pop(key, ())
        self.give_back([(d.pk, token) for d, token in queue], delay)

    def slow_down(self, key, result: transport.Result) -> None:
        """A 429/503 with Retry-After pauses the webhook for every worker (recorded with
        the attempt: hooks.worker.pacing.slow_down); what waits here for it goes back."""
        seconds = retry.parse_retry_after(result.headers.get("Retry-After"))
        if seconds and isinstance(key, int):
            self.release(key, timedelta(seconds=seconds))

    @staticmethod
    def give_back(claimed: list[tuple], delay: timedelta = RELEASE_DELAY) -> None:
        """Hand (delivery id, claim token) pairs back to the table, due after `delay`."""
        if claimed:
            with writelock.serialized():
                claims.release(claimed, timezone.now() + delay)

    def give_back_waiting(self) -> None:
        """Everything claimed here that has not gone out goes back, due now, for
        another worker (best effort: if the database is gone, the lease lapses)."""
        claimed = [(d.pk, token) for queue in self.waiting.values() for d, token in queue]
        self.waiting.clear()
        try:
            self.give_back(claimed, timedelta(0))
        except (OperationalError, InterfaceError) as exc:
            log.warning(
                "Could not give back %d deliveries (%s); their claims lapse.", len(claimed), exc
            )

    # -- the lease ------------------------------------------------------------
    def tokens(self) -> set:
        """The claim tokens of everything held here: waiting, in flight, or landed and
        not yet recorded."""
        held = {token for queue in self.waiting.values() for _, token in queue}
        held.update(token for _, token in self.in_flight.values())
        held.update(sent.token for sent in self.finished)
        return held

    def renew(self) -> None:
        """Keep the lease on what this pump holds; a failure is only logged (the write
        that follows backs off and tries again)."""
        if time.monotonic() - self.last_renewal < self.renew_every:
            return
        self.last_renewal = time.monotonic()
        until = timezone.now() + timedelta(seconds=self.settings.claim_lease)
        try:
            with writelock.serialized():
                claims.renew(self.tokens(), until)
        except (OperationalError, InterfaceError) as exc:
            log.warning("Could not renew claims (%s); trying again.", exc)
            _reconnect_if_broken()

    def surplus(self, claimed: list[Delivery]) -> tuple[list[Delivery], list[Delivery]]:
        """Split a claim into what to keep and what it brought for stalling endpoints
        beyond their one request. Once every pump leaves a stalling endpoint out of its
        claims, its deliveries are the oldest due, so the next claim that may take them
        takes many: they go back at once, in the claim's transaction, rather than wait
        here for a timeout."""
        room: dict = {}
        keep, back = [], []
        for d in claimed:
            key = endpoint(d)
            if key in self.stalling:
                if key not in room:
                    held = self.flying[key] + len(self.waiting.get(key, ()))
                    room[key] = self.bound(key) - held
                room[key] -= 1
                if room[key] < 0:
                    back.append(d)
                    continue
            keep.append(d)
        return keep, back

    def landed_within(self, timeout: float) -> list[threads.Job]:
        """The attempts that have finished, waiting up to `timeout` for a first one."""
        try:
            done = [self.landed.get(timeout=timeout)]
        except Empty:
            return []
        with contextlib.suppress(Empty):
            while True:
                done.append(self.landed.get_nowait())
        return done

    def collect(self, timeout: float) -> int:
        if not self.in_flight:
            return 0
        done = self.landed_within(timeout)
        for job in done:
            d, _ = self.in_flight.pop(job)
            self.on_reserve.discard(job)
            key = endpoint(d)
            self.flying[key] -= 1
            if not self.flying[key]:
                del self.flying[key]
            sent: Sent = job.result()
            if sent.built:
                self.learn(key, sent.result)
                if pacing.throttled(sent.result.status):
                    self.slow_down(key, sent.result)
            self.finished.append(sent)
        self.launch()
        return len(done)

    def flush(self, force: bool = False) -> None:
        due = time.monotonic() - self.last_flush >= FLUSH_EVERY
        if self.finished and (force or due or len(self.finished) >= FLUSH_SIZE):
            self.write()

    @staticmethod
    def _transaction(batch: list):
        """Recording and claiming share one transaction. With nothing to record, a
        claim on PostgreSQL is one statement and needs none (two round trips fewer on
        the way to a first byte); SQLite keeps it, to take the write lock once."""
        if batch or connection.vendor != "postgresql":
            return transaction.atomic(savepoint=False)
        return contextlib.nullcontext()

    def write(self, claim: int = 0, ids: list | None = None) -> tuple:
        """Record the finished attempts and claim up to `claim` more, in one write
        transaction (SQLite has one writer at a time: fewer, shorter write transactions
        keep workers moving), tried again after a transient error. What could not be
        recorded stays in `finished`."""
        batch, self.finished = self.finished, []
        try:
            claims_again = not (self.stopped or self.ending)  # what it releases is its own
            prepared = recording.prepare(batch, claims_again=claims_again)
            claimed = self._write_once_or_again(prepared, claim, ids)
        except BaseException:
            self.finished = batch + self.finished
            raise
        if batch:
            self.journal.committed(batch)
        self.recorded += len(batch)
        self.last_flush = time.monotonic()
        self.show()
        return self._take(claimed) if claimed else []

    def show(self) -> None:
        """This process's figures for /metrics (a gauge each, one series per process)."""
        metrics.IN_FLIGHT.set(len(self.in_flight))
        waiting = sum(len(queue) for queue in self.waiting.values())
        metrics.HELD.set(len(self.in_flight) + waiting + len(self.finished))

    def _write_once_or_again(
        self, prepared: recording.Prepared, claim: int, ids: list | None
    ) -> list[claims.Claim]:
        """A transient database error (deadlock, lock timeout, serialization failure, a
        restart) rolls the whole transaction back: try it again with backoff, for up to
        WRITE_OUTAGE seconds. A stop requested meanwhile claims nothing more.

        Only statements run in the transaction: what the attempts' rows hold is worked
        out before (`recording.prepare`), the claimed rows become deliveries after
        (`_take`). On SQLite every other writer waits meanwhile."""
        give_up = time.monotonic() + WRITE_OUTAGE
        delay, longest = WRITE_BACKOFF
        while True:
            try:
                with writelock.serialized(), self._transaction(prepared.batch):
                    recorded = prepared.apply()
                    claimed, taken, looked = [], None, []
                    if claim > 0 and not stopping.cluster_stopping():
                        claimed, taken, looked = self._claim(claim, ids)
                    recorded.update_health()  # last: other pumps wait on these rows
                recorded.after_commit()
                self.learned_paces(taken, looked)
                self.released += recorded.released
                if recorded.late:  # subjects an emitting transaction held (PostgreSQL)
                    self.released += order.release_late(recorded.late, prepared.releases.until)
                return claimed
            except (OperationalError, InterfaceError) as exc:
                if time.monotonic() + delay > give_up:
                    log.error(
                        "Write transaction failed for %g s (%s); giving up.", WRITE_OUTAGE, exc
                    )
                    raise
                log.warning("Write transaction failed (%s); trying again in %.2f s.", exc, delay)
                _reconnect_if_broken()
                time.sleep(delay)
                delay = min(delay * 2, longest)

    def _claim(self, room: int, ids: list | None) -> tuple:
        """The generic claim, leaving the paced webhooks out, then theirs within their
        buckets (no more query than before while no webhook is paced)."""
        paced = pacing.paced()
        excluded = self.saturated()
        if paced:
            excluded = list({*excluded, *paced})
        lease = self.settings.claim_lease
        claimed = [claims.claim_rows(ids, room, lease, exclude_webhooks=excluded)]
        if not paced:
            return claimed, None, []
        looked = self.paced_due()
        taken = pacing.claim(looked, room - len(claimed[0].rows), lease)
        return claimed + taken.claims, taken, looked

    def _endpoint_bound_with_more(self) -> bool:
        """An endpoint took all this process may send it and more is due: another process
        (of this cluster or another machine's) can send that meanwhile. Paced webhooks'
        deliveries do not count: they wait for their bucket, not for a worker."""
        return bool(self.saturated()) and _unpaced_due()

    def _take(self, claimed: list[claims.Claim]) -> list[tuple[Delivery, object]]:
        """The deliveries claimed with their tokens, less the surplus for stalling
        endpoints, given back."""
        kept = []
        for n, claim in enumerate(claimed):
            if not claim.rows:
                continue
            deliveries = claims.taken(claim)
            if n == 0:  # the generic claim (the paced ones read their pause under lock)
                deliveries = self.not_paused(deliveries, claim.token)
            keep, back = self.surplus(deliveries)
            self.give_back([(d.pk, claim.token) for d in back])
            kept += [(d, claim.token) for d in keep]
        return kept

    @staticmethod
    def not_paused(deliveries: list[Delivery], token) -> list[Delivery]:
        """What the generic claim brought for a webhook another process's receiver has
        just paused (429/503 with Retry-After: this process's list of paced webhooks
        is a second old at most) goes back, due when the pause ends, no attempt counted."""
        paused = pacing.paused_among({d.webhook_id for d in deliveries if d.webhook_id})
        if not paused:
            return deliveries
        pacing.forget()  # the next claim leaves them out
        back: dict = defaultdict(list)
        for d in deliveries:
            if d.webhook_id in paused:
                back[paused[d.webhook_id]].append((d.pk, token))
        with writelock.serialized():
            for until, claimed in back.items():
                claims.release(claimed, until)
        return [d for d in deliveries if d.webhook_id not in paused]

    # -- the loop -------------------------------------------------------------
    def took_released(self) -> bool:
        """Its last records released held deliveries: worth claiming again, even after an
        empty claim (they were not due when it ran)."""
        released, self.released = self.released, 0
        return released > 0 and not self.stopped

    def idle(self) -> bool:
        return not self.in_flight and not any(self.waiting.values())

    def stop_claiming(self) -> None:
        """The cluster is stopping: claim nothing more, give back what waits here."""
        self.stopped = True
        log.info("Stopping: %d deliveries in flight land, the rest go back.", len(self.in_flight))
        self.give_back_waiting()

    def drain(self, ids: list | None = None, budget: float | None = None) -> int:
        """Deliver `ids` and whatever else falls due, until nothing is left, the budget
        is spent or the cluster stops; then let what is in flight land. Returns how many
        were recorded. If it fails (the database stayed away), what has not gone out is
        given back if it can be, and the rest of its claims lapse with their lease."""
        if stopping.cluster_stopping():
            if ids:
                unmark(ids)  # the next look at the table hands them to another worker
            return 0
        try:
            journal.recover()  # what a killed worker got and did not record, first
            return self._drain(ids, budget)
        except BaseException:
            self.give_back_waiting()
            raise
        finally:
            self.journal.close()  # what is not recorded stays, for the next pump

    def _drain(self, ids: list | None, budget: float | None) -> int:
        deadline = time.monotonic() + (budget if budget is not None else self.settings.pump_seconds)
        try:
            self._loop(ids, deadline)
        finally:
            self.owe_wakes()
        return self.recorded

    def _loop(self, ids: list | None, deadline: float) -> None:
        claiming, first, changed = True, True, True
        while True:
            self.renew()
            if not self.stopped and stopping.cluster_stopping():
                self.stop_claiming()
                claiming = False
            if self.paced_wait() == 0.0:
                changed = True  # a paced webhook's next token is there
            if (
                claiming
                and changed
                and time.monotonic() < deadline
                and self.holding() <= self.capacity // 2
            ):
                got = self.refill(ids)
                if first and (got >= self.capacity or self._endpoint_bound_with_more()):
                    bring_helper()  # more work than one pump, or than one process may send
                ids, first = None, False
                claiming = got > 0 or bool(self.saturated()) or bool(self.paced_waiting)
                changed = got > 0  # an empty claim is not repeated until something lands
            if self.took_released():
                claiming = changed = True  # the next of an ordered webhook's subjects
            if self.idle():
                if claiming and not changed and self.wait_for_pace(deadline):
                    continue
                if not (claiming and changed) or time.monotonic() >= deadline:
                    break
                continue  # everything landed: claim again straight away
            pace = self.paced_wait()
            timeout = min(FLUSH_EVERY, pace) if pace else FLUSH_EVERY  # 0: not claimed yet
            changed = self.collect(timeout=timeout) > 0 or changed
            self.flush()
        self.ending = True  # what the last record releases is the ticker's to hand over
        self.flush(force=True)
        self.show()
        spent = time.monotonic() >= deadline
        if claiming and spent and claims.due(timezone.now()).exists():
            bring_helper()  # budget spent with work left: continue in a fresh task

    def wait_for_pace(self, deadline: float) -> bool:
        """Nothing in flight, and a paced webhook's deliveries wait for their next token:
        sleep until then if it comes within PACE_HORIZON and the budget (a stop wakes
        it). Whether it waited; if not, the pump ends and owes the ticker a wake-up."""
        pace = self.paced_wait()
        if pace is None or pace > pacing.PACE_HORIZON or time.monotonic() + pace >= deadline:
            return False
        stopping.wait(pace)
        return True

    def owe_wakes(self) -> None:
        """Ending with paced webhooks' deliveries waiting for a token or a pause: the
        ticker starts a pump for each when it is due (best effort: the lapse of their
        hand-over, ENQUEUE_GRACE, is the safety net)."""
        wakes, self.paced_wakes = self.paced_wakes, {}
        try:
            pacing.owe(wakes)
        except (OperationalError, InterfaceError) as exc:
            log.warning("Could not leave %d paced webhooks a wake-up (%s).", len(wakes), exc)


def _unpaced_due() -> bool:
    """Deliveries due now, paced webhooks' left out (they wait for their buckets)."""
    due = claims.due(timezone.now())
    paced = list(pacing.paced())
    return (due.exclude(webhook_id__in=paced) if paced else due).exists()


def bring_helper() -> None:
    """One more pump task; with the broker down this pump goes on alone (the ticker
    hands due deliveries over once the broker is back)."""
    try:
        enqueue_pump()
    except Exception as exc:  # the broker's client raises its own errors
        log.warning("Could not ask the broker for another pump (%s: %s).", type(exc).__name__, exc)


def _reconnect_if_broken() -> None:
    """After a connection error, a broken connection is dropped, so the next statement
    connects again (a merely locked SQLite database keeps its connection)."""
    if connection.connection is not None and not connection.is_usable():
        connection.close()

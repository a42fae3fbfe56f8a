"""Recording finished attempts: one Attempt row each (secrets masked, response capped),
the delivery moved on to the step `retry.next_step` decides, and the webhook's health
updated, in the caller's write transaction."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from hooks import conf, logsafe, metrics
from hooks.models import Attempt, Delivery, Webhook
from hooks.outgoing.request import masked
from hooks.outgoing.transport import OutgoingRequest, Result
from hooks.worker import health, order, pacing, rows, statements
from hooks.worker.retry import next_step, parse_retry_after

log = logging.getLogger("hooks.recording")
Status = Delivery.Status


@dataclass
class Sent:
    """One finished attempt, waiting to be recorded."""

    delivery: Delivery
    token: uuid.UUID
    request: OutgoingRequest
    result: Result
    built: bool = True  # False: the request could not be built, nothing went out
    row: Attempt | None = None  # its Attempt row, once built (`row_of`)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def shown_body(request: OutgoingRequest, cap: int) -> str:
    """The request body as history keeps it: what the body says to show (the event's
    row, for an event with large values kept apart), or the body; at most `cap` bytes
    of it (WEBHOOK_MAX_PAYLOAD_BYTES), and then its size."""
    if request.shown_body is not None:
        text = request.shown_body
        if len(text) <= cap:  # characters: fewer than the bytes, or as many
            return text
        data = text.encode()
    else:
        data = request.body
    if len(data) <= cap:
        return _text(data)
    return _text(data[:cap]) + f"… [{len(data)} bytes]"


def _attempt_row(sent: Sent, cap: int | None = None) -> Attempt:
    """The attempt's row, unsaved: built with `rows.instance`, as a pump records a
    thousand a second (every concrete field is given here). `cap`: the most of the
    request body it keeps (default WEBHOOK_MAX_PAYLOAD_BYTES)."""
    d, request, result = sent.delivery, sent.request, sent.result
    cap = conf.settings().max_payload_bytes if cap is None else cap
    attempt = rows.instance(Attempt, {
        "id": None,
        "delivery_id": d.pk,
        "number": d.attempts,
        "trigger": Attempt.Trigger.MANUAL if d.manual else Attempt.Trigger.AUTOMATIC,
        "started_at": result.started_at or timezone.now(),
        "duration_ms": round(result.duration_ms, 2),
        "url": request.url,
        "request_headers": masked(request.headers, d.webhook),
        "request_body": shown_body(request, cap),
        "response_status": result.status,
        "response_headers": result.headers,
        "response_body": _text(result.body),
        "error": result.error,
        "succeeded": result.ok,
        "hops": [hop.record() for hop in result.hops] if result.hops else None,
    })  # fmt: skip
    rows.relate(attempt, "delivery", d)
    return attempt


def row_of(sent: Sent, cap: int | None = None) -> Attempt:
    """The attempt's row, built once: the pump's journal builds it as the answer lands
    (hooks.worker.journal), the batch's recording uses it."""
    if sent.row is None:
        sent.row = _attempt_row(sent, cap)
    return sent.row


@dataclass
class Recorded:
    """Attempts written and deliveries moved on; what is left to do with them."""

    batch: list[Sent]
    attempts: list[Attempt]
    outcomes: dict[int, tuple[Webhook, list[health.Outcome]]]
    now: datetime
    statuses: list[str]  # each delivery's status after its attempt, in batch order
    released: int = 0  # held deliveries of ordered webhooks that are pending now
    late: set = field(default_factory=set)  # chains to release after the commit (order)

    def update_health(self) -> None:
        """Failure counters and disabling. Webhook rows are shared by every worker: they
        are locked in one order (by id), so two workers cannot deadlock, and best as the
        last thing before the commit, so the others wait on them the least."""
        for webhook_id in sorted(self.outcomes):
            webhook, outcomes = self.outcomes[webhook_id]
            health.after_attempts(webhook, outcomes, self.now)

    def after_commit(self) -> None:
        """What is done once the attempts are recorded for good: metrics and the log."""
        metrics.observe(self.attempts, self.statuses, self.now)
        self.log_failures()

    def log_failures(self) -> None:
        for sent, attempt in zip(self.batch, self.attempts, strict=True):
            if not sent.result.ok:
                log.info(
                    "Delivery %s attempt %s failed: %s",
                    sent.delivery.pk,
                    attempt.number,
                    logsafe.text(sent.result.error) or f"HTTP {sent.result.status}",
                )


@dataclass
class Prepared:
    """A batch's attempts and steps, worked out and written as SQL outside the write
    transaction; `apply()` runs the statements (again, if a transaction is retried)."""

    batch: list[Sent]
    attempts: list[Attempt]
    inserts: list[tuple[str, list]]
    updates: list[tuple[str, list]]  # the deliveries moved on, by group
    releases: order.Release  # then each finished chain's next (hooks.worker.order)
    outcomes: dict[int, tuple[Webhook, list[health.Outcome]]]
    now: datetime
    statuses: list[str]
    paces: Paces

    def apply(self) -> Recorded:
        """One INSERT for the attempts (per batch size the database takes), one UPDATE
        per group of deliveries that end alike, one per retried delivery. Runs inside
        the caller's transaction; health is left to the caller (`Recorded.update_health`),
        to be done last."""
        with statements.cursor() as cursor:
            ids = []
            for sql, params in self.inserts:
                cursor.execute(sql, params)
                if cursor.description:  # RETURNING the new ids (rows.Inserter decides)
                    ids += [row[0] for row in cursor.fetchall()]
            for sql, params in self.updates:
                cursor.execute(sql, params)
            released, late = self.releases.run(cursor)
        self.paces.apply(self.now)
        for attempt, pk in zip(self.attempts, ids, strict=False):
            attempt.pk = pk
            attempt._state.adding, attempt._state.db = False, connection.alias
        recorded = Recorded(self.batch, self.attempts, self.outcomes, self.now, self.statuses)
        recorded.released, recorded.late = released, late
        return recorded


@dataclass
class Paces:
    """What the receivers said about their pace (hooks.worker.pacing): the webhooks told
    to slow down (429/503, with their longest Retry-After), and how many answers came
    from the other webhooks whose learned rate is lowered."""

    slowed: dict[int, float | None]
    answered: dict[int, int]

    @classmethod
    def of(cls, batch: list[Sent], now: datetime) -> Paces:
        slowed: dict[int, float | None] = {}
        answered: dict[int, int] = defaultdict(int)
        lowered = None  # read only if a batch has answers of a paced webhook
        for sent in batch:
            webhook_id, status = sent.delivery.webhook_id, sent.result.status
            if not webhook_id or status is None or not sent.built:
                continue
            if pacing.throttled(status):
                seconds = parse_retry_after(sent.result.headers.get("Retry-After"), now)
                slowed[webhook_id] = max(seconds or 0.0, slowed.get(webhook_id) or 0.0) or None
                continue
            if lowered is None:
                paced = pacing.paced()
                lowered = {key for key, pace in paced.items() if pace.learned_rate is not None}
            if webhook_id in lowered:
                answered[webhook_id] += 1
        return cls(slowed, dict(answered))

    def apply(self, now: datetime) -> None:
        for webhook_id in sorted(self.slowed):
            pacing.slow_down(webhook_id, self.slowed[webhook_id], now)
        for webhook_id in sorted(set(self.answered) - set(self.slowed)):
            pacing.recover(webhook_id, self.answered[webhook_id])


_deliveries = rows.Updater(Delivery, held_by="claim_token")
RELEASED = {"claim_token": None, "claimed_until": None, "manual": False}


def _updates(finished: dict[tuple, list], retried: list[tuple[Sent, dict]], now: datetime) -> list:
    """The UPDATEs that move the deliveries on, if the worker still holds them."""
    out = []
    for (token, status, code, error), pks in finished.items():
        values = {"status": status, "completed_at": now, "next_attempt_at": None,
                  "last_response_status": code, "last_error": error, **RELEASED}  # fmt: skip
        out.append(_deliveries.statement(values, pks, token))
    for sent, step in retried:
        values = {"last_response_status": sent.result.status, "last_error": sent.result.error,
                  **step, **RELEASED}  # fmt: skip
        out.append(_deliveries.statement(values, [sent.delivery.pk], sent.token))
    return out


_attempt_rows = rows.Inserter(Attempt)


def prepare(batch: list[Sent], claims_again: bool = False) -> Prepared:
    """Each attempt's row and each delivery's next step (`retry.next_step`), grouped
    into the statements `Prepared.apply` runs. `claims_again`: the caller (a pump)
    claims again after the commit, so what its record releases is left to it rather
    than to the ticker (`order.Release`)."""
    settings = conf.settings()
    now = timezone.now()
    attempts = [row_of(sent, settings.max_payload_bytes) for sent in batch]
    finished: dict[tuple, list] = defaultdict(list)
    retried: list[tuple[Sent, dict]] = []
    chains: set[order.Chain] = set()  # of ordered webhooks' deliveries that finish
    outcomes: dict[int, tuple[Webhook, list[health.Outcome]]] = {}
    statuses: list[str] = []
    for sent in batch:
        step = next_step(sent.delivery, sent.result, settings, now)
        statuses.append(step["status"])
        result = sent.result
        if step["status"] == Status.PENDING:
            retried.append((sent, step))
        else:
            finished[(sent.token, step["status"], result.status, result.error)].append(
                sent.delivery.pk
            )
            if sent.delivery.subject is not None:
                chains.add((sent.delivery.webhook_id, sent.delivery.subject))
        if sent.delivery.webhook_id:
            webhook = sent.delivery.webhook
            outcome = health.Outcome(
                result.ok, result.status, step["status"] == Status.FAILED, sent.delivery,
                result.error or "",
            )  # fmt: skip
            outcomes.setdefault(webhook.pk, (webhook, []))[1].append(outcome)
    inserts = _attempt_rows.statements(attempts) if attempts else []
    updates = _updates(finished, retried, now)
    paces = Paces.of(batch, now)
    until = order.pump_holds(settings.claim_lease, now) if claims_again else None
    releases = order.Release.of(chains, wait=False, until=until)  # never waits on an emit
    return Prepared(batch, attempts, inserts, updates, releases, outcomes, now, statuses, paces)


def write(batch: list[Sent]) -> Recorded:
    """Record each attempt and move its delivery to the decided step (if this worker
    still holds it), in the caller's transaction (`prepare`, then `Prepared.apply`)."""
    return prepare(batch).apply()


def record(batch: list[Sent]) -> list[Attempt]:
    """Record finished attempts and update the webhooks' health, in one transaction."""
    if not batch:
        return []
    with transaction.atomic(savepoint=False):
        recorded = write(batch)
        recorded.update_health()
    recorded.after_commit()
    return recorded.attempts

"""The pump's journal: the answers it got and has not recorded yet, in a file, so a
worker killed with `kill -9` does not make the next one send them again.

A pump records the attempts that landed in batches (every FLUSH_EVERY seconds, in the
write transaction with its next claim). A worker killed in between loses those answers
with it, and the deliveries, still claimed, would go out again once the claim's lease
lapses, though the receivers had answered them. So the sender thread writes each
request to the pump's journal as it goes out (the delivery and the attempt's number)
and its answer as it arrives, one `write()` each: the attempt's row as history keeps
it (headers masked, bodies capped: nothing the Attempt row would not hold) and the
claim token. The kernel keeps a file's written pages when a process is killed, so no
fsync is needed (a machine that crashes or loses power loses what was not written
back: then the leases lapse and the deliveries go out again, as without a journal).
Once the attempts of all its lines are recorded a file is emptied; every ROTATE_LINES
lines a new one is started and the old one removed once its attempts are recorded; a
pump that ends with everything recorded removes its files.

Recovery: before claiming, a pump looks at the journals in its folder. Each one a live
pump writes is held under an exclusive `flock`, which the kernel releases when the
process dies whatever killed it; so a journal whose lock can be taken belongs to no
live pump (whatever became of its pid: a pid used again cannot hold a lock it never
took), and taking the lock also keeps two recovering pumps apart. Its answers are
recorded as the pump would have recorded them (`recording.prepare`), each attempt
once: an attempt whose number is already recorded for its delivery (the dead pump
committed it, or another pump recovered it) is skipped; a delivery another worker has
claimed since keeps its new claim (the update is the claim token's, as always), and
gets the attempt in its history. A torn last line (a write cut short) is left out.

The folder is one per database under WEBHOOK_JOURNAL_DIR, and must be on the machine's
own disk: the locks are the machine's, so each machine recovers its own journals, at
its first pump after its qcluster starts; what a machine that never comes back held
goes out again when the leases lapse.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings as django_settings
from django.db import InterfaceError, OperationalError, connection, transaction

from hooks.models import Attempt, Delivery
from hooks.outgoing.transport import OutgoingRequest, Result
from hooks.worker import recording, rows, writelock
from hooks.worker.recording import Sent

log = logging.getLogger("hooks.journal")
# One encoder, made once (json.dumps with options makes one a call): ASCII out, compact.
_encode = json.JSONEncoder(separators=(",", ":")).encode

SUFFIX = ".journal"
VERSION = 1
SENDING = b'{"v":1,"sending":'  # how a request's line starts (an answer's does not)
# The Attempt row's fields a line keeps (the delivery and number are the line's own).
ROW_FIELDS = (
    "trigger", "started_at", "duration_ms", "url", "request_headers", "request_body",
    "response_status", "response_headers", "response_body", "error", "succeeded", "hops",
)  # fmt: skip


def folder() -> Path:
    """This database's journals on this machine: WEBHOOK_JOURNAL_DIR, one folder per
    database, so a journal is never recorded into another database."""
    db = connection.settings_dict
    name = f"{connection.vendor}:{db.get('HOST') or ''}:{db.get('PORT') or ''}/{db['NAME']}"
    key = hashlib.sha256(name.encode()).hexdigest()[:16]
    root = django_settings.WEBHOOK_JOURNAL_DIR or Path(django_settings.VAR_DIR) / "journal"
    return Path(root) / key


def line(sent: Sent, cap: int | None = None) -> bytes:
    """A landed answer as one journal line (and its Attempt row kept on `sent`, so the
    batch's recording does not build it again). `cap`: WEBHOOK_MAX_PAYLOAD_BYTES."""
    row, d = recording.row_of(sent, cap), sent.delivery
    values = {name: getattr(row, name) for name in ROW_FIELDS}
    values["started_at"] = row.started_at.isoformat()
    entry = {
        "v": VERSION, "delivery": str(d.pk), "number": row.number, "token": str(sent.token),
        "manual": bool(d.manual), "built": sent.built,
        "success_status": sent.result.success_status, "row": values,
    }  # fmt: skip
    return _encode(entry).encode() + b"\n"


def sent_line(d: Delivery) -> bytes:
    """A request about to go out (its claim counted the attempt): with no answer after
    it in the journal, it was on the wire when the worker died."""
    return f'{{"v":{VERSION},"sending":"{d.pk}","number":{int(d.attempts)}}}\n'.encode()


ROTATE_LINES = 512
CHUNK = (
    500  # delivery ids per query when recovering  # a journal file this long gives way to a new one
)


@dataclass
class _File:
    """One file of a journal: its descriptor (holding the lock), how many lines it has
    and how many of them are of attempts not recorded yet."""

    path: Path
    fd: int
    lines: int = 0
    unrecorded: int = 0


class Journal:
    """One pump's journal, written by its sender threads: a line as each request goes
    out, and one as its answer arrives (the pump thread may be in a write transaction
    meanwhile: an answer waiting for it would be lost with a kill). A file is opened at
    the first line and held under its lock. Once the attempts of all its lines are
    recorded the file is emptied; every ROTATE_LINES lines a new one is started (while
    requests are in flight there is no such moment), and the old one is removed once
    its attempts are recorded."""

    def __init__(self, cap: int | None = None, directory: Path | None = None) -> None:
        self.cap, self.directory = cap, directory
        self.lock = threading.Lock()
        self.current: _File | None = None
        self.older: list[_File] = []  # given way, with attempts still unrecorded
        self.written: dict[tuple, list[_File]] = {}  # (delivery id, number) -> its files
        self.closed = False
        self.broken = False  # could not be written: the pump goes on without

    @property
    def path(self) -> Path | None:
        return self.current.path if self.current else None

    def sending(self, d: Delivery) -> None:
        """A request goes out (on the thread that sends it)."""
        if not (self.broken or self.closed):
            self._write((d.pk, d.attempts), sent_line(d))

    def append(self, sent: Sent) -> None:
        """Its answer arrived (on the same thread): one write(). An answer that cannot
        be written down (a value JSON cannot hold) is logged and recorded as usual:
        only a kill would send it again."""
        if self.broken or self.closed:
            return
        try:
            data = line(sent, self.cap)
        except (TypeError, ValueError):
            log.exception("Cannot journal the answer to delivery %s.", sent.delivery.pk)
            return
        self._write((sent.delivery.pk, sent.row.number), data)

    def _write(self, key: tuple, data: bytes) -> None:
        """A journal that cannot be written is logged once and given up: the answers
        are still recorded; a kill would only re-send them, as without a journal."""
        with self.lock:
            if self.broken or self.closed:
                return
            try:
                if self.current is None or self.current.lines >= ROTATE_LINES:
                    self._give_way()
                os.write(self.current.fd, data)
            except OSError as exc:
                log.warning("Cannot write the pump's journal (%s); going on without it.", exc)
                self.broken = True
                return
            self.current.lines += 1
            self.current.unrecorded += 1
            self.written.setdefault(key, []).append(self.current)

    def _give_way(self) -> None:
        if self.current is not None:
            self.older.append(self.current)
        self.current = self._open()

    def _open(self) -> _File:
        """Made under a name recovery does not look at, locked, then named: a recovering
        pump never takes a journal that is being made."""
        directory = self.directory or folder()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex}"
        making = directory / f"{name}.new"
        fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = directory / f"{name}{SUFFIX}"
        os.rename(making, path)
        return _File(path, fd)

    def committed(self, batch: list[Sent]) -> None:
        """`batch` is recorded for good: its lines may go."""
        with self.lock:
            for sent in batch:
                for file in self.written.pop((sent.delivery.pk, sent.delivery.attempts), ()):
                    file.unrecorded -= 1
            try:
                self._tidy()
            except OSError as exc:  # recovery skips what was recorded: only a cost
                log.warning("Cannot empty the pump's journal (%s).", exc)

    def _tidy(self) -> None:
        for file in [f for f in self.older if not f.unrecorded]:
            self.older.remove(file)
            _remove(file)
        current = self.current
        if current is not None and not current.unrecorded and current.lines:
            os.ftruncate(current.fd, 0)
            current.lines = 0

    def close(self) -> None:
        """The pump ends: its files whose lines are all recorded are removed, the others
        left for the next pump to record (the lock goes with the descriptor). A line of
        an answer that lands later is not written: it goes out again, as one on the
        wire would."""
        with self.lock:
            self.closed = True
            files = self.older + ([self.current] if self.current else [])
            self.older, self.current = [], None
        for file in files:
            if not file.unrecorded:
                _remove(file)
            else:
                os.close(file.fd)


def _remove(file: _File) -> None:
    """Unlinked before its lock is released: no recovering pump reads it meanwhile."""
    with contextlib.suppress(OSError):
        file.path.unlink()
    os.close(file.fd)


# -- recovery ---------------------------------------------------------------------
@dataclass
class Entry:
    """One journal line, read back."""

    delivery_id: uuid.UUID
    number: int
    token: uuid.UUID
    manual: bool
    built: bool
    success_status: int | None
    row: dict

    @classmethod
    def parse(cls, text: bytes) -> Entry:
        data = json.loads(text)
        if data.get("v") != VERSION:
            raise ValueError(f"unknown journal version {data.get('v')!r}")
        row = data["row"]
        row["started_at"] = datetime.fromisoformat(row["started_at"])
        return cls(
            uuid.UUID(data["delivery"]), int(data["number"]), uuid.UUID(data["token"]),
            bool(data["manual"]), bool(data["built"]), data["success_status"], row,
        )  # fmt: skip

    def sent(self, delivery: Delivery) -> Sent:
        """The attempt as the pump had it when it landed, for `recording.prepare`."""
        delivery.attempts, delivery.manual = self.number, self.manual  # as when sent
        row = rows.instance(Attempt, {"id": None, "delivery_id": delivery.pk,
                                      "number": self.number, **self.row})  # fmt: skip
        rows.relate(row, "delivery", delivery)
        result = Result(
            status=self.row["response_status"], headers=self.row["response_headers"],
            body=self.row["response_body"].encode(), duration_ms=self.row["duration_ms"],
            error=self.row["error"], started_at=self.row["started_at"],
            success_status=self.success_status,
        )  # fmt: skip
        request = OutgoingRequest(self.row["url"], self.row["request_headers"], b"", 0, 0)
        return Sent(delivery, self.token, request, result, built=self.built, row=row)


@dataclass
class Lines:
    """What journals hold: the answers, and the requests that went out (delivery id,
    attempt number)."""

    answers: list[Entry] = field(default_factory=list)
    sending: set[tuple] = field(default_factory=set)

    def on_the_wire(self) -> set[tuple]:
        """The requests that went out and whose answer the worker had not got."""
        return self.sending - {(e.delivery_id, e.number) for e in self.answers}


def read(path: Path, fd: int, into: Lines) -> None:
    """The lines of a journal; a torn one (a write cut short) is left out."""
    with os.fdopen(os.dup(fd), "rb") as f:
        data = f.read()
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            if raw.startswith(SENDING):
                sending = json.loads(raw)
                into.sending.add((uuid.UUID(sending["sending"]), int(sending["number"])))
            else:
                into.answers.append(Entry.parse(raw))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("Journal %s: a line that cannot be read is left out (%s).", path.name, exc)


def _lock_if_dead(path: Path) -> int | None:
    """The journal's descriptor, locked, if no live pump holds it (and it is still the
    file of that name: another pump may have recorded and removed it meanwhile)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == os.stat(path).st_ino:
            return fd
    except OSError:  # held by a live pump (BlockingIOError), or gone meanwhile
        pass
    os.close(fd)
    return None


@dataclass
class Recovered:
    """What a recovery found: the answers it recorded, and the requests that had gone
    out with no answer kept (they go out again once their claims lapse)."""

    recorded: int = 0
    on_the_wire: int = 0


def recover(directory: Path | None = None) -> Recovered:
    """Record the answers in the journals no live pump holds, then remove them. The
    database away: the journals stay for the next pump. A journal that cannot be
    recorded for another reason is set aside (renamed `.failed`, and logged), so it
    does not stop every pump that follows."""
    directory = directory or folder()
    if not directory.is_dir():
        return Recovered()
    try:
        with _recovering(directory):
            return _recover(directory)
    except OSError as exc:  # the folder unreadable: the leases are the safety net
        log.warning("Cannot recover the journals in %s (%s).", directory, exc)
        return Recovered()


@contextlib.contextmanager
def _recovering(directory: Path):
    """One pump of the machine recovers at a time, and the others wait for it: a pump
    that went on to claim meanwhile could take (once their lease lapsed) the very
    deliveries whose answers are being recorded, and send them again."""
    fd = os.open(directory / "recovery.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _recover(directory: Path) -> Recovered:
    """A dead pump's files are read together (a request's line and its answer's may be
    in two of them), recorded in one transaction, then removed."""
    held, lines = [], Lines()
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        fd = _lock_if_dead(path)
        if fd is not None:
            held.append((path, fd))
            read(path, fd, lines)
    if not held:
        return Recovered()
    try:
        found = Recovered(replay(lines.answers), len(lines.on_the_wire()))
        for path, _ in held:
            path.unlink()
    except (OperationalError, InterfaceError) as exc:
        log.warning("Could not record %d journals (%s); the next pump tries again.",
                    len(held), exc)  # fmt: skip
        return Recovered()
    except Exception:
        log.exception("Could not record %d journals; they are set aside.", len(held))
        for path, _ in held:
            path.rename(path.with_suffix(".failed"))
        return Recovered()
    finally:
        for _, fd in held:
            os.close(fd)
    log.warning(
        "A stopped worker's journal: %d answers recorded; %d requests were on the wire "
        "(they go out again once their claims lapse).", found.recorded, found.on_the_wire,
    )  # fmt: skip
    return found


def replay(entries: list[Entry]) -> int:
    """Record the entries' attempts as the pump would have, each attempt once, in one
    write transaction. Returns how many were recorded."""
    if not entries:
        return 0
    with writelock.serialized(), transaction.atomic(savepoint=False):
        batch = pending(entries)
        if not batch:
            return 0
        recorded = recording.prepare(batch).apply()
        recorded.update_health()
    recorded.after_commit()
    return len(batch)


def pending(entries: list[Entry]) -> list[Sent]:
    """The entries whose attempt is not recorded yet, with their deliveries (a deleted
    delivery's are dropped), one per attempt."""
    ids = list({e.delivery_id for e in entries})
    done = set()
    for at in range(0, len(ids), CHUNK):  # SQLite's limit on a statement's parameters
        chunk = Attempt.objects.filter(delivery_id__in=ids[at : at + CHUNK])
        done.update(chunk.values_list("delivery_id", "number"))
    deliveries = Delivery.objects.select_related("event", "webhook").in_bulk(ids)
    batch = []
    for e in entries:
        key = (e.delivery_id, e.number)
        if key in done or e.delivery_id not in deliveries:
            continue
        done.add(key)
        batch.append(e.sent(copy.copy(deliveries[e.delivery_id])))
    return batch

"""The pump's journal (hooks.worker.journal): the answers a worker got and had not
recorded when it was killed are recorded by the next pump, not sent again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from hooks import conf, emit
from hooks.models import Attempt, Delivery
from hooks.outgoing.request import MASK
from hooks.tools.receiver import Reply
from hooks.worker import claims, journal, recording
from hooks.worker.attempt import attempt
from hooks.worker.pump import Pump
from tests.conftest import ROOT, TEST_EVENT, make_webhook
from tests.test_e2e_qcluster import wait_until, worker_env
from tests.test_runhub import alive, descendants

pytestmark = pytest.mark.django_db(transaction=True)


def sent_batch(n: int, receiver, **webhook_fields) -> list[recording.Sent]:
    """`n` deliveries claimed and sent to `receiver`, their answers not recorded: what
    a pump holds between an answer and its batch's commit."""
    make_webhook(receiver.url, **webhook_fields)
    with transaction.atomic():
        for i in range(n):
            emit(TEST_EVENT, {"n": i})
    token, deliveries = claims.claim(None, n, lease=60)
    assert len(deliveries) == n
    return [attempt(d, token, conf.settings()) for d in deliveries]


def left_by_a_dead_pump(batch: list[recording.Sent]) -> Path:
    """A journal holding `batch`, whose pump is gone (its lock released)."""
    pump_journal = journal.Journal()
    for sent in batch:
        pump_journal.append(sent)
    path = pump_journal.path
    pump_journal.close()
    return path


def journals() -> list[Path]:
    """The journal files left (the recovering pumps' lock file aside)."""
    return sorted(p for p in journal.folder().glob("*") if p.name != "recovery.lock")


def test_a_dead_pumps_answers_are_recorded_as_the_pump_would_have(receiver):
    receiver.respond = lambda request: Reply(201, {"X-Answer": "yes"}, b"thanks")
    batch = sent_batch(3, receiver)
    expected = [recording.row_of(sent) for sent in batch]
    left_by_a_dead_pump(batch)
    assert not Attempt.objects.exists()

    assert journal.recover().recorded == 3
    assert journals() == []  # recorded, then removed
    for row in expected:
        got = Attempt.objects.get(delivery_id=row.delivery_id, number=row.number)
        for field in journal.ROW_FIELDS:
            assert getattr(got, field) == getattr(row, field), field
        assert got.response_status == 201 and got.response_body == "thanks" and got.succeeded
    assert set(Delivery.objects.values_list("status", "claim_token")) == {("succeeded", None)}
    assert len(receiver.requests) == 3  # nothing was sent again


def test_a_failed_answer_is_retried_on_the_schedule_with_the_attempt_number_it_had(receiver):
    receiver.respond = lambda request: Reply(500)
    [sent] = sent_batch(1, receiver)
    left_by_a_dead_pump([sent])
    before = timezone.now()
    assert journal.recover().recorded == 1
    d = Delivery.objects.get()
    assert d.status == "pending" and d.claim_token is None and d.attempts == 1
    assert d.next_attempt_at >= before and d.last_response_status == 500
    assert Attempt.objects.get().number == 1 and not Attempt.objects.get().succeeded


def test_an_attempt_already_recorded_is_not_recorded_again(receiver):
    """The dead pump had committed its batch, and died before emptying its journal."""
    batch = sent_batch(2, receiver)
    left_by_a_dead_pump(batch)
    recording.record(batch[:1])
    assert journal.recover().recorded == 1
    assert Attempt.objects.count() == 2
    assert journal.recover().recorded == 0  # the file is gone: nothing twice


def test_a_live_pumps_journal_is_left_alone_until_it_is_gone(receiver):
    batch = sent_batch(2, receiver)
    live = journal.Journal()
    for sent in batch:
        live.append(sent)
    assert journal.recover().recorded == 0  # its pump still holds it: its lock says so
    assert not Attempt.objects.exists() and live.path.exists()
    live.close()  # the process ends without recording them
    assert journal.recover().recorded == 2
    assert Attempt.objects.count() == 2


def test_a_journal_of_a_live_process_in_another_pid_is_left_alone(receiver, tmp_path):
    """The lock is the process's: a journal held by another live process (whatever its
    pid) is not taken; once that process is killed, it is."""
    batch = sent_batch(1, receiver)
    path = left_by_a_dead_pump(batch)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
         str(path)], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert journal.recover().recorded == 0 and path.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert journal.recover().recorded == 1


def test_a_torn_last_line_is_left_out_and_the_rest_recorded(receiver, caplog):
    batch = sent_batch(2, receiver)
    path = left_by_a_dead_pump(batch)
    whole = path.read_bytes()
    path.write_bytes(whole + journal.line(batch[0])[:40])  # a write cut short
    assert journal.recover().recorded == 2
    assert Attempt.objects.count() == 2
    assert "cannot be read" in caplog.text


def test_a_journal_holds_no_credential_the_attempt_row_does_not(receiver):
    secret = "Bearer s3cr3t-t0ken"
    batch = sent_batch(1, receiver, headers={"Authorization": secret, "X-Api-Key": "k3y-v4lue"})
    assert receiver.requests[0].headers["Authorization"] == secret  # it was sent
    path = left_by_a_dead_pump(batch)
    text = path.read_text()
    assert "s3cr3t" not in text and "k3y-v4lue" not in text
    assert json.loads(text)["row"]["request_headers"]["Authorization"] == MASK
    webhook = batch[0].delivery.webhook
    assert webhook.secret.split("_")[-1] not in text  # the signing secret
    journal.recover()
    assert Attempt.objects.get().request_headers["X-Api-Key"] == MASK


def test_a_delivery_claimed_again_since_keeps_its_new_claim(receiver):
    [sent] = sent_batch(1, receiver)
    left_by_a_dead_pump([sent])
    Delivery.objects.update(claimed_until=timezone.now())  # the dead pump's lease lapsed
    token, [again] = claims.claim(None, 1, lease=60)
    assert again.attempts == 2
    assert journal.recover().recorded == 1
    d = Delivery.objects.get()
    assert d.claim_token == token and d.status == "pending"  # the new claim's to record
    assert list(Attempt.objects.values_list("number", flat=True)) == [1]


def test_a_deleted_delivery_is_skipped(receiver):
    batch = sent_batch(2, receiver)
    left_by_a_dead_pump(batch)
    Delivery.objects.filter(pk=batch[0].delivery.pk).delete()
    assert journal.recover().recorded == 1
    assert Attempt.objects.get().delivery_id == batch[1].delivery.pk


def test_the_database_away_leaves_the_journal_for_the_next_pump(receiver, monkeypatch):
    batch = sent_batch(1, receiver)
    path = left_by_a_dead_pump(batch)

    def away(entries):
        raise OperationalError("database is away")

    replay = journal.replay
    monkeypatch.setattr(journal, "replay", away)
    assert journal.recover().recorded == 0 and path.exists()
    monkeypatch.setattr(journal, "replay", replay)  # it is back
    assert journal.recover().recorded == 1


def test_a_journal_that_cannot_be_recorded_is_set_aside(receiver, monkeypatch, caplog):
    batch = sent_batch(1, receiver)
    path = left_by_a_dead_pump(batch)
    monkeypatch.setattr(recording, "prepare", lambda batch: 1 / 0)
    assert journal.recover().recorded == 0
    assert not path.exists() and path.with_suffix(".failed").exists()
    assert journal.recover().recorded == 0  # it stops no pump that follows
    assert "set aside" in caplog.text


def test_the_pump_empties_its_journal_at_each_commit_and_removes_it_at_the_end(
    receiver, monkeypatch
):
    make_webhook(receiver.url)
    with transaction.atomic():
        for i in range(30):
            emit(TEST_EVENT, {"n": i})
    after_commits = []
    committed = journal.Journal.committed

    def watch(self, batch):
        committed(self, batch)
        if self.current:
            after_commits.append((self.current.unrecorded, self.path.stat().st_size))

    monkeypatch.setattr(journal.Journal, "committed", watch)
    assert Pump().drain(None, budget=30) == 30
    emptied = [size for unrecorded, size in after_commits if not unrecorded]
    assert emptied and set(emptied) == {0}
    assert journals() == []


def test_a_journal_keeps_the_lines_not_recorded_yet_and_gives_way_when_long(receiver, monkeypatch):
    monkeypatch.setattr(journal, "ROTATE_LINES", 4)
    batch = sent_batch(4, receiver)
    pump_journal = journal.Journal()
    for sent in batch[:3]:  # a line as each request goes out, one as its answer lands
        pump_journal.sending(sent.delivery)
        pump_journal.append(sent)
    second = pump_journal.path  # four lines to a file
    [first] = [path for path in journals() if path != second]
    pump_journal.committed(batch[:2])
    assert not first.exists() and second.exists()  # all its attempts recorded
    assert len(second.read_bytes().splitlines()) == 2
    pump_journal.sending(batch[3].delivery)  # on the wire when the pump dies
    recording.record(batch[2:3])
    pump_journal.committed(batch[2:3])
    assert len(second.read_bytes().splitlines()) == 3  # not emptied: one is in flight
    pump_journal.close()
    assert journals() == [second]
    found = journal.recover()
    assert (found.recorded, found.on_the_wire) == (0, 1)
    assert journals() == []


def test_a_journal_empties_once_every_attempt_in_it_is_recorded(receiver):
    batch = sent_batch(2, receiver)
    pump_journal = journal.Journal()
    for sent in batch:
        pump_journal.sending(sent.delivery)
        pump_journal.append(sent)
    path = pump_journal.path
    pump_journal.committed(batch)
    assert path.read_bytes() == b""
    pump_journal.close()
    assert not path.exists()


def test_a_pump_whose_writes_fail_leaves_its_answers_to_the_next_pump(receiver, monkeypatch):
    make_webhook(receiver.url)
    with transaction.atomic():
        for i in range(5):
            emit(TEST_EVENT, {"n": i})
    monkeypatch.setattr("hooks.worker.pump.WRITE_OUTAGE", 0.0)
    first = Pump()
    real = first._write_once_or_again

    def fails_once_sent(prepared, claim, ids):
        """The database goes away once everything was sent and has landed."""
        if prepared.batch and len(receiver.requests) == 5:
            raise OperationalError("database is away")
        return real(prepared, claim, ids)

    monkeypatch.setattr(first, "_write_once_or_again", fails_once_sent)
    with pytest.raises(OperationalError):
        first.drain(None, budget=30)
    assert len(receiver.requests) == 5 and Attempt.objects.count() < 5
    assert len(journals()) == 1
    Delivery.objects.update(claimed_until=timezone.now())  # its lease lapses
    Pump().drain(None, budget=30)
    assert Attempt.objects.count() == 5
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    sends = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(sends) == 5 and set(sends.values()) == {1}  # the answered ones not again
    assert journals() == []


def test_a_pump_whose_journal_cannot_be_written_delivers_and_records_all(
    receiver, settings, tmp_path, caplog
):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    settings.WEBHOOK_JOURNAL_DIR = str(blocked / "journal")  # no folder can be made there
    make_webhook(receiver.url)
    with transaction.atomic():
        for i in range(10):
            emit(TEST_EVENT, {"n": i})
    assert Pump().drain(None, budget=30) == 10
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert "Cannot write the pump's journal" in caplog.text


def test_an_answer_that_cannot_be_written_down_is_still_recorded(receiver, monkeypatch, caplog):
    def cannot(sent, cap=None):
        raise TypeError("not JSON serializable")

    monkeypatch.setattr(journal, "line", cannot)
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    assert Pump().drain(None, budget=30) == 1
    assert Delivery.objects.get().status == "succeeded"
    assert "Cannot journal the answer" in caplog.text


def test_a_folder_that_cannot_be_recovered_stops_no_pump(receiver, caplog):
    batch = sent_batch(1, receiver)
    left_by_a_dead_pump(batch)
    (journal.folder() / "recovery.lock").mkdir()  # cannot be opened as the lock
    assert journal.recover().recorded == 0
    assert "Cannot recover the journals" in caplog.text
    emit(TEST_EVENT, {"n": 2})
    assert Pump().drain(None, budget=10) == 1  # a pump goes on to claim and send


# -- a real cluster killed mid-drain ---------------------------------------------------
def wire_in_journals() -> set[str]:
    """The deliveries whose request the dead cluster's journals say went out with no
    answer got."""
    lines = journal.Lines()
    for path in journals():
        fd = os.open(path, os.O_RDONLY)
        try:
            journal.read(path, fd, lines)
        finally:
            os.close(fd)
    return {str(delivery_id) for delivery_id, _ in lines.on_the_wire()}


def answer_not_written(requests, killed: float, restarted: float) -> set[str]:
    """At the receiver: the deliveries whose request had come before the kill and whose
    answer was not written whole when it came (a request cut short, read after the
    kill, or answered after it). Fewer than the journals count: an answer written just
    before the kill may not have been read yet."""
    return {
        r.headers["webhook-id"]
        for r in requests
        if r.received_at < restarted and (r.answered_at is None or r.answered_at >= killed)
    }


def start_cluster(tmp_path, name: str) -> tuple[subprocess.Popen, object]:
    log = (tmp_path / f"{name}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT,
        env={**worker_env(), "WEBHOOK_CLAIM_LEASE": "5"},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return proc, log


def stop(started: list) -> None:
    for proc, log in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    connection.close()


def test_a_killed_cluster_re_sends_only_what_was_on_the_wire(receiver, tmp_path):
    receiver.respond = lambda request: time.sleep(0.005) or Reply(200)
    make_webhook(receiver.url)
    n = 1500
    with transaction.atomic():
        for i in range(n):
            emit(TEST_EVENT, {"n": i})
    started = []
    try:
        first, log = start_cluster(tmp_path, "first")
        started.append((first, log))
        assert receiver.wait_for(n // 3, timeout=60), "the first cluster sent too little"
        tree = descendants(first.pid) | {first.pid}
        killed = time.monotonic()
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        assert wait_until(lambda: not alive(tree), timeout=10)
        restarted = time.monotonic()
        wire = wire_in_journals()
        started.append(start_cluster(tmp_path, "second"))
        done = lambda: Delivery.objects.filter(status="succeeded").count() == n  # noqa: E731
        assert wait_until(done, timeout=90), "not everything was delivered"
    finally:
        stop(started)
    whole = [r for r in receiver.requests if len(r.body) == int(r.headers["Content-Length"])]
    seen = Counter(r.headers["webhook-id"] for r in whole)
    assert len(seen) == n  # nothing lost
    twice = {i for i, count in seen.items() if count > 1}
    unanswered = answer_not_written(receiver.requests, killed, restarted)
    print(f"re-sent {len(twice)}; on the wire {len(wire)} (answer not written {len(unanswered)})")
    assert twice <= wire, f"{len(twice - wire)} re-sent whose answer the worker had got"
    assert unanswered <= wire  # the journal's count misses none the receiver saw
    assert journals() == []

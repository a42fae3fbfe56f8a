"""The sender threads: jobs land, done, on their caller's queue; a failure is handed to
whoever takes the result; the stall reserve comes on top of the main threads."""

from __future__ import annotations

import threading
from queue import SimpleQueue

import pytest

from hooks import process
from hooks.worker import threads


def test_jobs_land_on_their_own_callers_queue():
    pool = threads.Senders(3)
    mine, theirs = SimpleQueue(), SimpleQueue()
    jobs = [pool.submit(pow, n, 2, landed=mine) for n in range(10)]
    other = pool.submit(str.upper, "x", landed=theirs)
    landed = [mine.get(timeout=5) for _ in jobs]
    assert sorted(job.result() for job in landed) == [n * n for n in range(10)]
    assert set(landed) == set(jobs) and mine.empty()
    assert theirs.get(timeout=5) is other and other.result() == "X"


def test_a_failing_call_raises_where_its_result_is_taken_and_the_thread_lives_on():
    pool, landed = threads.Senders(1), SimpleQueue()
    pool.submit(int, "not a number", landed=landed)
    with pytest.raises(ValueError, match="invalid literal"):
        landed.get(timeout=5).result()
    assert pool.submit(int, "7", landed=landed) and landed.get(timeout=5).result() == 7


def test_a_process_has_its_threads_and_the_stall_reserve_once():
    process.current().senders = None
    before = threading.active_count()
    pool = threads.senders(8)
    assert pool.count == 8 + threads.stall_reserve(8) == 10
    assert threads.senders(8) is pool
    assert threading.active_count() - before == 10

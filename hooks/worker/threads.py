"""The process's sender threads: `WEBHOOK_SEND_THREADS` for endpoints that answer, and a
reserve for endpoints that stall (no answer), so they do not take threads from the
healthy ones. Created on first use, after django-q2 has forked its workers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hooks import process


def stall_reserve(threads: int) -> int:
    return max(1, threads // 4)


def executor(threads: int) -> ThreadPoolExecutor:
    state = process.current()
    with state.lock:
        if state.executor is None:
            state.executor = ThreadPoolExecutor(
                max_workers=threads + stall_reserve(threads), thread_name_prefix="hooks-send"
            )
        return state.executor

"""The engine's per-process state: one place, one reset, and nothing crosses a fork."""

from __future__ import annotations

import os

import hooks
from hooks import process


def test_reset_forgets_what_was_learnt_but_keeps_threads_and_pools():
    state = process.current()
    state.endpoint_bounds[1] = 1
    state.stalling.add(1)
    state.stopped_webhooks = (1e12, [7])
    state.env_slots_synced = True
    pools = state.pools
    process.reset()
    fresh = process.current()
    assert not fresh.endpoint_bounds and not fresh.stalling and not fresh.env_slots_synced
    assert fresh.stopped_webhooks == (0.0, [])
    assert fresh.pools is pools and fresh.senders is state.senders


def test_a_forked_process_starts_from_scratch(monkeypatch):
    """django-q2 forks its workers: a child must not share the parent's sender threads,
    broker connection or connection pools."""
    state = process.current()
    state.endpoint_bounds[1] = 4
    state.broker = object()
    monkeypatch.setattr(os, "getpid", lambda: state.pid + 1)
    child = process.current()
    assert child is not state and child.pid == state.pid + 1
    assert child.broker is None and child.senders is None and not child.pools
    assert not child.endpoint_bounds


def test_every_public_name_resolves():
    for name in hooks.__all__:
        assert getattr(hooks, name) is not None, name
    assert sorted(dir(hooks)) == sorted(hooks.__all__)

"""What one process has learnt and holds, in one place: a forked child starts from
scratch, and `reset()` (what tests call between cases) forgets what was learnt.

- what the pump learnt about endpoints (in-flight bounds, which ones stall);
- the claims' short-lived lists of stopped and of paced webhooks;
- whether environment-fed slots were brought in line;
- the event types staff declared, as last read;
- the broker client, the sender threads and the HTTP connection pools, which must
  not cross a fork: django-q2
  forks its workers, so each process (pid) gets its own.

Registries filled at start-up (event types, slots, namespaces' names, metrics
collectors) are configuration, not state, and live with their modules. Run-time state
that is not one process's, or that a hot path reaches without `current()`'s pid check,
stays in the one module that reads and writes it:

- the cluster's stop flag (`worker/stopping.py`): shared by the cluster's processes,
  made before they fork;
- per thread: the writers' lock depths (`worker/writelock.py`) and the transaction's
  pending hand-over (`outbox/handover.py`);
- per database connection: the raw cursors (`worker/statements.py`);
- per process already: the writers' lock files, by pid (`worker/writelock.py`), and the
  wake-up sender, a socket with no peer that a child may share (`worker/wakeup.py`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProcessState:
    pid: int = field(default_factory=os.getpid)
    # endpoint (webhook id or URL) -> current bound on requests in flight
    endpoint_bounds: dict[Any, int] = field(default_factory=dict)
    # endpoints whose last request got no answer: they send on the stall reserve
    stalling: set = field(default_factory=set)
    # (monotonic time read, ids of disabled or inactive webhooks)
    stopped_webhooks: tuple[float, list[int]] = (0.0, [])
    # (monotonic time read, paced webhooks by id: hooks.worker.pacing.Paced)
    paced_webhooks: tuple[float, dict[int, Any]] = (0.0, {})
    env_slots_synced: bool = False
    # (monotonic time read, event types declared at run time by name)
    declared_types: tuple[float, dict[str, Any]] = (float("-inf"), {})
    broker: Any = None
    senders: Any = None  # hooks.worker.threads.Senders
    # (scheme, address, port, host, verify) -> connections.Pool
    pools: dict[tuple, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_state = ProcessState()


def current() -> ProcessState:
    """This process's state; a forked child starts from scratch."""
    global _state
    pid = os.getpid()
    if _state.pid != pid:
        _state = ProcessState(pid=pid)
    return _state


def reset() -> None:
    """Forget everything learnt (tests start each case from scratch). Sender threads
    and connection pools are kept: they hold no knowledge, only resources."""
    global _state
    old = current()
    _state = ProcessState(senders=old.senders, pools=old.pools, lock=old.lock)

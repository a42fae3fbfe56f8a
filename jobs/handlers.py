"""Built-in handlers, RunPod's contract: `handler(job) -> output`, job = {"id", "input"}."""

from __future__ import annotations

import time


def echo(job: dict):
    """Returns its input."""
    return job["input"]


def sleep(job: dict):
    """Sleeps `input.seconds`, then returns them."""
    seconds = float(job["input"].get("seconds", 1))
    if seconds < 0:
        return {"error": "seconds must not be negative"}
    time.sleep(seconds)
    return {"seconds": seconds}

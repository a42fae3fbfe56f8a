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


def words(job: dict):
    """A generator (streaming) handler: yields the words of `input.text`, one per
    `input.delay` seconds (default 0)."""
    delay = float(job["input"].get("delay", 0))
    for word in str(job["input"].get("text", "")).split():
        time.sleep(delay)
        yield word

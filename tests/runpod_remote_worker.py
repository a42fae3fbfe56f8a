"""A RunPod worker as its authors write it, run as its own process by the tests against
the hub (only the environment lines the admin shows). REMOTE_HANDLER picks its handler:
`plain` (returns, or raises on input.fail; waits for input.release when given) or
`stream` (a generator) or `async` (sleeps input.seconds)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import runpod

RELEASE_WAIT = 60.0  # seconds a handler waits for its release, at most


def plain(job: dict) -> dict:
    if job["input"].get("fail"):
        raise ValueError("the worker was told to fail")
    release = job["input"].get("release")
    if release:
        runpod.serverless.progress_update(job, "waiting")  # the SDK's own
        deadline = time.monotonic() + RELEASE_WAIT
        while not Path(release).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    return {"prompt": job["input"].get("prompt"), "pod": os.environ["RUNPOD_POD_ID"]}


async def sleeper(job: dict) -> dict:
    """An async handler: sleeps input.seconds (a stop signal cancels it), then returns."""
    await asyncio.sleep(float(job["input"].get("seconds", 0)))
    return {"slept": job["input"].get("seconds", 0)}


def stream(job: dict):
    yield from str(job["input"].get("text", "")).split()


if __name__ == "__main__":
    handler = {"plain": plain, "stream": stream, "async": sleeper}[os.environ["REMOTE_HANDLER"]]
    runpod.serverless.start({"handler": handler})

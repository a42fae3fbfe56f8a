"""A RunPod worker's handler file as its authors write it, run by the hub unchanged: it
reports progress with runpod-python's own progress_update (both ways a handler reaches
it), then waits until the test lets it finish (the file named in its input appears)."""

from __future__ import annotations

import time
from pathlib import Path

import runpod
from runpod.serverless import progress_update

RELEASE_WAIT = 60.0  # seconds the handler waits for its release, at most


def _released(job: dict) -> bool:
    release, deadline = Path(job["input"]["release"]), time.monotonic() + RELEASE_WAIT
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return release.exists()


def handler(job: dict) -> dict:
    runpod.serverless.progress_update(job, "50%")
    return {"released": _released(job), "prompt": job["input"].get("prompt")}


def imported_handler(job: dict) -> dict:
    """The same, through `from runpod.serverless import progress_update`."""
    progress_update(job, {"percent": 50})
    return {"released": _released(job)}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})

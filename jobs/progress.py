"""RunPod's `progress_update(job, progress)` for the handlers the hub runs.

In a job's process (the runner's forked child) it hands the progress to the job worker
as one line on the child's pipe; the worker keeps the latest on the job, and `/status`
answers it as the job's `output` while the job is IN_PROGRESS, as RunPod's does. A
RunPod handler file runs unchanged: in a job's process runpod-python's own
`progress_update` is this one (`runpod.serverless.progress_update` and
`runpod.serverless.modules.rp_progress.progress_update`), replaced where runpod is
already imported and, through an import hook, when the handler imports it (importing
runpod takes seconds: a job that does not use it does not pay for it)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from typing import Any

KEY = "progress"  # the line's only key: {"progress": …}
RUNPOD_PROGRESS = "runpod.serverless.modules.rp_progress"  # where runpod defines it
RUNPOD_SERVERLESS = "runpod.serverless"  # where handlers find it (imported from the above)


@dataclass(frozen=True)
class _Running:
    """The job this process runs, and how its lines reach the worker."""

    job_id: str
    limit: int  # the job's payload limit, in bytes of JSON
    send: Callable[[str], None]  # writes one line to the worker


_running: _Running | None = None


def progress_update(job: dict[str, Any], progress: Any) -> None:
    """Report `progress` (any JSON value, at most the job's payload limit) for the running
    `job`: `/status` shows it as the job's `output` while the job is IN_PROGRESS. Raises
    RuntimeError outside a job's process, ValueError for another job, for progress over
    the limit or holding text that is not valid Unicode, TypeError for progress that is
    not JSON."""
    running = _running
    if running is None:
        raise RuntimeError(
            "progress_update() reports the progress of a running job: call it from a "
            "handler the hub runs, in its job's process."
        )
    job_id = job.get("id") if isinstance(job, dict) else None
    if job_id != running.job_id:
        raise ValueError(
            f"progress_update() was given job {job_id!r}; this process runs job {running.job_id!r}."
        )
    running.send(_line(progress, running.limit))


def _line(progress: Any, limit: int) -> str:
    """The progress line, refused here (the handler sees why) when it cannot be kept."""
    try:
        text = json.dumps(progress, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"A progress update must be JSON: {exc}") from None
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise ValueError(
            "A progress update holds text that is not valid Unicode (a lone surrogate)."
        ) from None
    if size > limit:
        raise ValueError(
            f"A progress update is {size} bytes; at most {limit} fit (the job's payload limit)."
        )
    return f'{{"{KEY}":{text}}}'


def attach(job_id: str, limit: int, send: Callable[[str], None]) -> None:
    """In a job's process, before its handler is loaded: progress_update reports for
    `job_id`, through `send`, and is runpod's progress_update too."""
    global _running
    _running = _Running(job_id, limit, send)
    replace_runpods()


def replace_runpods() -> None:
    """runpod's progress_update is ours in this process: at once where runpod is
    imported, otherwise as the handler imports it."""
    if RUNPOD_PROGRESS in sys.modules:
        for name in (RUNPOD_PROGRESS, RUNPOD_SERVERLESS):
            if name in sys.modules:
                sys.modules[name].progress_update = progress_update
    elif not any(isinstance(finder, _OnRunpodImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _OnRunpodImport())


class _OnRunpodImport:
    """An import hook for runpod's progress module alone: loaded as usual, then its
    progress_update is ours, before `runpod.serverless` imports the name from it."""

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        if fullname != RUNPOD_PROGRESS:
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module) -> None:
            load(module)
            module.progress_update = progress_update

        spec.loader.exec_module = exec_module  # this spec's loader alone
        return spec

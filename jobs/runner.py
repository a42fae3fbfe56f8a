"""Running jobs in the `jobs` django-q2 cluster (apart from webhook deliveries).

The handler runs in a forked child process, so an execution timeout or a
cancellation can stop it for real; the worker polls the child, heartbeats the job,
and records the outcome. Final states are reached by one conditional UPDATE, so the
events of a final state are emitted once, by whoever got there first."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import inspect
import json
import logging
import os
import signal
import socket
import time
import traceback
from datetime import timedelta

from django.utils import timezone

import hooks
from jobs import lifecycle, pipe, progress, queue
from jobs.models import Job

log = logging.getLogger("jobs.runner")
Status = Job.Status
HEARTBEAT = 5.0  # seconds between heartbeats of a running job
# When the jobs cluster stops, a running job has this long to finish; then its handler
# is stopped and the job goes back to the queue (run again from the start).
JOB_STOP_GRACE = 10.0
GIVEN_BACK = "GIVEN_BACK"  # execute()'s status for a job the stopping worker gave back
CANCEL_CHECK = 0.5  # seconds between looks for a cancellation
POLL = 0.02
PIPE_SIZE = 1024 * 1024  # asked of the kernel (Linux's default most: /proc/sys/fs/pipe-max-size)
TRACEBACK_LIMIT = 4000  # characters of a handler's traceback kept in its error


def load_handler(path: str):
    module, _, name = path.rpartition(".")
    handler = getattr(importlib.import_module(module), name, None)
    if not callable(handler):
        raise ImportError(f"{path} is not a callable")
    return handler


def outcome(output) -> dict:
    """What a handler returned, as RunPod's worker reads it: a dict's `error` fails the
    job and its other keys stay the output (an empty rest is no output)."""
    result: dict = {"output": output}
    if isinstance(output, dict) and "error" in output:
        rest = {key: value for key, value in output.items() if key != "error"}
        error = output["error"]
        result = {"output": rest} if rest else {}
        if error:
            result["error"] = error if isinstance(error, str) else json.dumps(error)
    return result


def error_info(exc: BaseException) -> str:
    """A handler's exception as RunPod reports it: a JSON string of these six fields."""
    return json.dumps(
        {
            "error_type": str(type(exc)),
            "error_message": str(exc),
            "error_traceback": traceback.format_exc()[-TRACEBACK_LIMIT:],
            "hostname": socket.gethostname(),
            "worker_id": f"{socket.gethostname()}:{os.getppid()}",
            "runpod_version": f"webhookhub-{hooks.VERSION}",
        }
    )


def _child(handler_path: str, job: dict, write_fd: int, limit: int) -> None:
    """In the forked child: run the handler and write JSON lines, one per chunk a
    generator yields (`{"chunk": …}`) or progress it reports (`{"progress": …}`,
    jobs.progress) and one last with the result; exit at once."""
    # A lone surrogate in a handler's text is written as it is, for the parent to refuse.
    with os.fdopen(write_fd, "w", encoding="utf-8", errors="surrogatepass") as file:
        lines = pipe.Pipe(file)
        try:
            progress.attach(job["id"], limit, lines.send)
            result = load_handler(handler_path)(job)
            if inspect.iscoroutine(result):  # `async def handler`, as runpod-python runs it
                result = asyncio.run(result)
            if inspect.isasyncgen(result):
                result = _drained(result)
            final = _stream(result, lines) if inspect.isgenerator(result) else outcome(result)
            line = pipe.line(final)
        except BaseException as exc:  # the handler's failure is the job's failure
            line = pipe.line({"error": error_info(exc)})
        lines.send(line)
    os._exit(0)  # no cleanup: the parent's database connection must stay untouched


def _drained(chunks):
    """An async generator handler's chunks, one by one as it yields them, on an event
    loop of the child's own."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(chunks))
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(chunks.aclose())
        loop.close()


def _stream(chunks, lines: pipe.Pipe) -> dict:
    """Pass each yielded chunk on as it comes; a chunk that is a dict with an `error`
    ends the job as FAILED, as RunPod's worker does."""
    for chunk in chunks:
        if isinstance(chunk, dict) and chunk.get("error"):
            return {"error": str(chunk["error"])}
        lines.send(pipe.line({"chunk": chunk}))
    return {"streamed": True}


def _deadline(job: Job) -> tuple[float, str]:
    """When the running handler is stopped (monotonic clock), and why: its execution
    timeout, or its ttl if that runs out first (the ttl covers the job's whole life,
    queue and execution, as RunPod's does)."""
    execution = job.execution_timeout_ms / 1000
    ttl_left = (
        job.created_at + timedelta(milliseconds=job.ttl_ms) - timezone.now()
    ).total_seconds()
    if ttl_left < execution:
        return (
            time.monotonic() + ttl_left,
            f"The job's ttl of {job.ttl_ms} ms expired while it ran.",
        )
    return (
        time.monotonic() + execution,
        f"Execution timeout of {job.execution_timeout_ms} ms exceeded.",
    )


def execute(job: Job) -> tuple[str, object, str]:
    """(status, output, error) of running the job's handler under its timeout."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (runs in the child)
        os.close(read_fd)
        _child(
            job.endpoint.handler, {"id": job.id, "input": job.input}, write_fd, job.payload_limit()
        )
    os.close(write_fd)
    os.set_blocking(read_fd, False)  # the child may write more than a pipe holds
    with contextlib.suppress(OSError, AttributeError):  # fewer wake-ups for a big output
        fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    reader = pipe.Lines(job, read_fd)
    try:
        return _watch(job, pid, reader)
    finally:
        os.close(read_fd)


def _watch(job: Job, pid: int, reader: pipe.Lines) -> tuple[str, object, str]:
    deadline, why = _deadline(job)
    next_beat = time.monotonic() + HEARTBEAT
    next_check = time.monotonic() + CANCEL_CHECK
    stop_by = None  # set when the cluster is asked to stop
    while True:
        reader.read()
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            reader.read()
            return reader.result(status)
        now = time.monotonic()
        if stop_by is None and hooks.cluster_stopping():
            stop_by = now + JOB_STOP_GRACE
        if stop_by is not None and now > stop_by:
            _kill(pid)
            return GIVEN_BACK, None, ""
        if now > deadline:
            _kill(pid)
            return Status.TIMED_OUT, None, why
        if now > next_beat:
            next_beat = now + HEARTBEAT
            Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
        if now > next_check:
            next_check = now + CANCEL_CHECK
            if Job.objects.filter(pk=job.pk, status=Status.CANCELLED).exists():
                _kill(pid)
                return Status.CANCELLED, None, ""
        reader.wait(POLL)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def expired(job: Job) -> bool:
    return timezone.now() > job.created_at + timedelta(milliseconds=job.ttl_ms)


def run(job_id: str) -> str | None:
    """The django-q2 task: run one queued job to a final state."""
    job = Job.objects.select_related("endpoint", "user").filter(pk=job_id).first()
    if job is None or job.status != Status.IN_QUEUE or not job.endpoint.handler:
        return None  # gone, taken, or an endpoint only remote workers serve
    if expired(job):
        lifecycle.finish(job, Status.TIMED_OUT, error="The job's ttl expired before it started.")
        return Status.TIMED_OUT
    queue.enter()
    try:
        if not lifecycle.start(job):
            return None  # cancelled or taken meanwhile
        status, output, error = execute(job)
        if status == GIVEN_BACK:
            lifecycle.requeue(job)
            log.info("The jobs cluster is stopping: job %s goes back to the queue.", job.pk)
        elif status != Status.CANCELLED:
            lifecycle.finish(job, status, output=output, error=error)
        return status
    finally:
        queue.leave()

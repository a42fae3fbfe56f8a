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
import re
import select
import signal
import socket
import time
import traceback
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

import hooks
from jobs import lifecycle, queue
from jobs.models import Chunk, Job
from jobs.schemas import json_size

log = logging.getLogger("jobs.runner")
Status = Job.Status
HEARTBEAT = 5.0  # seconds between heartbeats of a running job
# When the jobs cluster stops, a running job has this long to finish; then its handler
# is stopped and the job goes back to the queue (run again from the start).
JOB_STOP_GRACE = 10.0
GIVEN_BACK = "GIVEN_BACK"  # execute()'s status for a job the stopping worker gave back
CANCEL_CHECK = 0.5  # seconds between looks for a cancellation
POLL = 0.02
CHUNK_WRAPPING = len('{"chunk":}')
OUTPUT_WRAPPING = len('{"output":}')
# A line from the handler's process may be this much longer than the job's payload limit
# (a failed handler's error beside its output); a longer one is counted, not kept.
LINE_MARGIN = 64 * 1024
READ_SIZE = 1024 * 1024
PIPE_SIZE = 1024 * 1024  # asked of the kernel (Linux's default most: /proc/sys/fs/pipe-max-size)
OUTPUT_MARGIN = 4096  # bytes of a final event beside the job's input and output
TRACEBACK_LIMIT = 4000  # characters of a handler's traceback kept in its error
LONE_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")  # as the child's pipe writes one


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


def _child(handler_path: str, job: dict, write_fd: int) -> None:
    """In the forked child: run the handler and write JSON lines, one per chunk a
    generator yields (`{"chunk": …}`) and one last with the result; exit at once."""
    # A lone surrogate in a handler's text is written as it is, for the parent to refuse.
    with os.fdopen(write_fd, "w", encoding="utf-8", errors="surrogatepass") as pipe:
        try:
            result = load_handler(handler_path)(job)
            if inspect.iscoroutine(result):  # `async def handler`, as runpod-python runs it
                result = asyncio.run(result)
            if inspect.isasyncgen(result):
                result = _drained(result)
            final = _stream(result, pipe) if inspect.isgenerator(result) else outcome(result)
            line = _line(final)
        except BaseException as exc:  # the handler's failure is the job's failure
            line = _line({"error": error_info(exc)})
        pipe.write(line)
        pipe.write("\n")
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


def _line(message: dict) -> str:
    """A line for the parent: compact JSON, not ASCII-escaped, so its length in bytes
    is that of its value as the hub stores and sends it, plus the wrapping."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def _stream(chunks, pipe) -> dict:
    """Pass each yielded chunk on as it comes; a chunk that is a dict with an `error`
    ends the job as FAILED, as RunPod's worker does."""
    for chunk in chunks:
        if isinstance(chunk, dict) and chunk.get("error"):
            return {"error": str(chunk["error"])}
        pipe.write(_line({"chunk": chunk}) + "\n")
        pipe.flush()
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
        _child(job.endpoint.handler, {"id": job.id, "input": job.input}, write_fd)
    os.close(write_fd)
    os.set_blocking(read_fd, False)  # the child may write more than a pipe holds
    with contextlib.suppress(OSError, AttributeError):  # fewer wake-ups for a big output
        fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    reader = _Lines(job, read_fd)
    try:
        return _watch(job, pid, reader)
    finally:
        os.close(read_fd)


def _watch(job: Job, pid: int, reader: _Lines) -> tuple[str, object, str]:
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


class _Lines:
    """The child's JSON lines as they arrive: chunks are stored at once (so /stream sees
    them while the job runs), the last line is the result. What it holds is bounded by
    the job's payload limit: a longer line is counted as it comes, not kept, and chunks
    are kept only to aggregate them (within the limit)."""

    def __init__(self, job: Job, fd: int):
        self.job, self.fd = job, fd
        self.limit = job.payload_limit()
        self.aggregate = job.endpoint.aggregate_stream
        self.pieces: list[bytes] = []  # of the line being received
        self.length = 0  # of the line being received
        self.head = b""  # its first bytes: a chunk's or the result's
        self.closed = False
        self.stored = 0  # chunks stored
        self.kept: list = []  # chunks kept for the aggregate output
        self.kept_size = 1  # bytes of the aggregate's JSON: "[", each chunk and a comma
        self.final: dict | None = None
        self.final_size = 0
        self.too_big = ""
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def wait(self, timeout: float) -> None:
        """Until the child writes, or `timeout`: a big output is read as fast as it comes."""
        if self.closed:
            time.sleep(timeout)
        else:
            self.poller.poll(timeout * 1000)

    def read(self) -> None:
        new: list = []
        while True:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                break
            if not data:
                self.closed = True
                break
            self._take(data, new)
        self._store(new)

    def _take(self, data: bytes, new: list) -> None:
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self.length:
                self.head = piece[:16]
            self.length += len(piece)
            if self.length <= self.limit + LINE_MARGIN:
                self.pieces.append(piece)
            else:
                self.pieces = []
            if end < 0:
                return
            pieces, length, self.pieces, self.length = self.pieces, self.length, [], 0
            if pieces:
                line = b"".join(pieces)
                del pieces  # one copy of a 20 MB line at a time
                self._line(line, new)
            elif length:
                self._over(length)
            start = end + 1

    def _over(self, length: int) -> None:
        """A line too long to keep: the job fails, saying how long."""
        if self.head.startswith(b'{"chunk":'):
            said = f"A streamed chunk is {length - CHUNK_WRAPPING} bytes"
        else:
            self.final, self.final_size = {}, length
            said = f"The job's output is {length - OUTPUT_WRAPPING} bytes"
        self.too_big = self.too_big or f"{said}; at most {self.limit} fit."

    def _line(self, line: bytes, new: list) -> None:
        if not line:
            return
        if LONE_SURROGATE.search(line):
            self.too_big = self.too_big or (
                "The job's output holds text that is not valid Unicode (a lone surrogate)."
            )
        message = json.loads(line)
        if "chunk" not in message:
            self.final, self.final_size = message, len(line)
            return
        size = len(line) - CHUNK_WRAPPING
        if size > self.limit:
            self.too_big = (
                self.too_big or f"A streamed chunk is {size} bytes; at most {self.limit} fit."
            )
        if self.too_big:
            return
        if self.aggregate:
            self.kept_size += size + 1
            if self.kept_size > self.limit:
                self.too_big = (
                    f"The job's streamed output is over {self.limit} bytes; at most that fits."
                )
                return
            self.kept.append(message["chunk"])
        new.append(message["chunk"])

    def _store(self, new: list) -> None:
        if not new:
            return
        start = self.stored
        Chunk.objects.bulk_create(
            Chunk(job_id=self.job.pk, seq=start + i, output=out) for i, out in enumerate(new)
        )
        self.stored += len(new)

    def result(self, wait_status: int) -> tuple[str, object, str]:
        if self.too_big:
            return Status.FAILED, None, self.too_big
        if self.final is None:
            return Status.FAILED, None, f"The handler process died (wait status {wait_status})."
        budget = output_budget(self.job)
        if self.final.get("error"):
            output = self.final.get("output")  # a failed handler's other keys: kept if they fit
            fits = output is None or self.final_size - OUTPUT_WRAPPING <= budget
            return Status.FAILED, output if fits else None, self.final["error"]
        if self.final.get("streamed"):
            output = self.kept if self.aggregate else []
            size = self.kept_size if self.aggregate else 2
        else:
            output, size = self.final.get("output"), self.final_size - OUTPUT_WRAPPING
        if size > budget:
            return Status.FAILED, None, f"The job's output is {size} bytes; at most {budget} fit."
        return Status.COMPLETED, output, ""


def output_budget(job: Job) -> int:
    """The largest output a job may end with: its payload limit (RunPod's: 10 MB for
    /run, 20 MB for /runsync), and what its end events can carry within
    WEBHOOK_MAX_EVENT_BYTES (SwarmUI's Every Job carries the input twice, as `input` and
    its fields, and the output twice, as `output` and `image`)."""
    room = hooks.settings().max_event_bytes - 2 * json_size(job.input) - OUTPUT_MARGIN
    return min(job.payload_limit(), room // 2)


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
    if job is None or job.status != Status.IN_QUEUE:
        return None
    if expired(job):
        lifecycle.finish(job, Status.TIMED_OUT, error="The job's ttl expired before it started.")
        return Status.TIMED_OUT
    queue.enter()
    try:
        with transaction.atomic():
            now = timezone.now()
            started = Job.objects.filter(pk=job.pk, status=Status.IN_QUEUE).update(
                status=Status.IN_PROGRESS, started_at=now, heartbeat_at=now
            )
            if started:
                job.refresh_from_db()
                Chunk.objects.filter(job=job).delete()  # a retried job streams anew
                lifecycle.started(job)
        if not started:
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

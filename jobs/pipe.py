"""The lines between a job's process and its worker: the handler's process (the
runner's forked child) writes JSON lines to a pipe (`Pipe`): a chunk a generator yields
(`{"chunk": …}`), progress it reports (`{"progress": …}`, jobs.progress), and last its
result; the worker reads them as they come (`Lines`), within the job's payload limit."""

from __future__ import annotations

import json
import os
import re
import select
import threading
import time

import hooks
from jobs import progress
from jobs.models import Chunk, Job
from jobs.schemas import json_size

Status = Job.Status
CHUNK_WRAPPING = len('{"chunk":}')
PROGRESS_WRAPPING = len(f'{{"{progress.KEY}":}}')
PROGRESS_EVERY = 0.2  # seconds: a handler reporting faster has only its latest progress kept
OUTPUT_WRAPPING = len('{"output":}')
# A line from the handler's process may be this much longer than the job's payload limit
# (a failed handler's error beside its output); a longer one is counted, not kept.
LINE_MARGIN = 64 * 1024
READ_SIZE = 1024 * 1024
OUTPUT_MARGIN = 4096  # bytes of a final event beside the job's input and output
LONE_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")  # as the child's pipe writes one


def line(message: dict) -> str:
    """A line for the parent: compact JSON, not ASCII-escaped, so its length in bytes
    is that of its value as the hub stores and sends it, plus the wrapping."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class Pipe:
    """The child's lines to the worker, one whole line at a time: a handler may report
    progress from a thread of its own while its generator yields."""

    def __init__(self, file) -> None:
        self.file, self.lock = file, threading.Lock()

    def send(self, line: str) -> None:
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()


class Lines:
    """The child's JSON lines as they arrive: chunks are stored at once (so /stream sees
    them while the job runs), the latest progress on the job (so /status does), the last
    line is the result. What it holds is bounded by
    the job's payload limit: a longer line is counted as it comes, not kept, and chunks
    are kept only to aggregate them (within the limit)."""

    def __init__(self, job: Job, fd: int):
        self.job, self.fd = job, fd
        self.limit = job.payload_limit()
        self.aggregate = job.endpoint.aggregate_stream
        self.pieces: list[bytes] = []  # of the line being received
        self.length = 0  # of the line being received
        self.head = b""  # its first bytes: a chunk's, progress' or the result's
        self.closed = False
        self.stored = 0  # chunks stored
        self.kept: list = []  # chunks kept for the aggregate output
        self.kept_size = 1  # bytes of the aggregate's JSON: "[", each chunk and a comma
        self.final: dict | None = None
        self.final_size = 0
        self.progress: object = None  # the latest progress the handler reported
        self.progress_new = False  # reported and not stored yet
        self.progress_stored_at = 0.0  # monotonic
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
        self._store_progress()

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
        elif self.head.startswith(b'{"progress":'):  # jobs.progress refuses it before
            said = f"A progress update is {length - PROGRESS_WRAPPING} bytes"
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
        if progress.KEY in message:
            if len(line) - PROGRESS_WRAPPING > self.limit:  # jobs.progress refuses it before
                self._over(len(line))
            self.progress, self.progress_new = message[progress.KEY], True
            return
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

    def _store_progress(self) -> None:
        """The latest progress, on the running job for /status: at most one write per
        PROGRESS_EVERY (the last one waits for the next read)."""
        now = time.monotonic()
        if not self.progress_new or now - self.progress_stored_at < PROGRESS_EVERY:
            return
        Job.objects.filter(pk=self.job.pk, status=Status.IN_PROGRESS).update(progress=self.progress)
        self.progress_new, self.progress_stored_at = False, now

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

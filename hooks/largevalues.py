"""Large values of an event's payload, kept apart from its row: cutting a payload at emit
time (`split`) and putting it back together at send time (`joined`). No database here.

A payload whose JSON fits WEBHOOK_MAX_PAYLOAD_BYTES is kept whole in the event's row, as
ever. A larger one (a job's 10 MB output) is split: each of its large values (a string,
object or array of APART_MIN bytes or more) goes apart, and the row keeps the rest with a
short preview in each one's place (its first PREVIEW bytes and its size). The outbox
stores each value once, by its digest, however many events of the transaction carry it
(hooks.models.LargeValue); the worker loads them with the claimed deliveries; the body a
receiver gets is built from the whole payload, and the history shows the row's.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

APART_MIN = 16 * 1024  # bytes of JSON from which a value may go apart
PREVIEW = 1024  # bytes of a value's JSON its preview keeps
FANOUT = 64  # an object or array with more items goes apart whole, its items unlooked at
VISITS = 20_000  # items looked at one by one in a payload; beyond, containers go whole
DEPTH = 32  # levels looked into; deeper containers go whole
WHOLE = "stored_apart"  # the row's one key when even the rest of the payload is too large

Path = tuple[str | int, ...]  # keys and indexes from the payload's top; () is all of it


def encode_json(data: Any) -> bytes:
    """JSON as the hub sends it: compact, UTF-8."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def json_size(data: Any) -> int:
    """`len(encode_json(data))`, without the bytes when the JSON is ASCII."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return len(text) if text.isascii() else len(text.encode())


def payload_size(payload: dict) -> int:
    """`len(encode_json(payload))`, measured one top-level value at a time: json.dumps
    gathers every piece of its JSON before it joins them, so measuring a 30 MB payload
    whole would hold 60 MB; this holds its largest value's JSON at most."""
    if not _plain_keys(payload):
        return json_size(payload)
    return size_of_object({key: json_size(value) for key, value in payload.items()})


@dataclass(frozen=True)
class Part:
    """A value that goes apart: where it was in the payload, and its JSON."""

    path: Path
    data: bytes
    digest: str = field(default="", compare=False)


def preview(data: bytes, value: Any = None) -> str:
    """What stands in a value's place in the row (and so in the history): a string's
    first PREVIEW characters, or the first PREVIEW bytes of an object's or array's JSON,
    and the size of its JSON."""
    head = value[:PREVIEW] if isinstance(value, str) else data[:PREVIEW].decode("utf-8", "ignore")
    return f"{head}… [{len(data)} bytes]"


def split(payload: dict, limit: int, size: int) -> tuple[dict, list[Part]]:
    """The payload the event's row keeps, and the parts that go apart. `size` is the
    payload's JSON size: a payload within `limit` is kept whole and nothing goes apart.
    Otherwise its large values go apart, then, while the rest is still over `limit`, its
    largest top-level fields; a payload whose top-level fields alone are over `limit`
    goes apart whole (the row keeps `{WHOLE: preview}`)."""
    if size <= limit:
        return payload, []
    cutter = _Cutter()
    if not _plain_keys(payload):
        return _whole(payload, cutter)
    kept, sizes = {}, {}
    for key, value in payload.items():
        kept[key], sizes[key] = cutter.walk(value, (key,))
    total = size_of_object(sizes)
    for key in sorted(sizes, key=sizes.get, reverse=True):
        if total <= limit or sizes[key] <= 2 * PREVIEW:
            break
        cutter.forget((key,))
        kept[key], smaller = cutter.apart((key,), cutter.encoded(payload[key]), payload[key])
        total -= sizes[key] - smaller
    if total > limit:
        return _whole(payload, cutter)
    return kept, cutter.digested(cutter.parts)


def _whole(payload: dict, cutter: _Cutter) -> tuple[dict, list[Part]]:
    whole = Part((), encode_json(payload))
    return {WHOLE: preview(whole.data)}, cutter.digested([whole])


def size_of_object(sizes: dict[str, int]) -> int:
    """The JSON size of an object whose values' JSON sizes are `sizes`."""
    keys = sum(len(encode_json(key)) + 1 for key in sizes)
    return 2 + keys + sum(sizes.values()) + max(len(sizes) - 1, 0)


class _Cutter:
    """One payload's walk: the parts found, and each large value's JSON encoded once
    (by identity: the payload holds every value alive meanwhile)."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.memo: dict[int, bytes] = {}
        self.visits = VISITS

    def encoded(self, value: Any) -> bytes:
        found = self.memo.get(id(value))
        if found is None:
            found = encode_json(value)
            if len(found) >= APART_MIN:
                self.memo[id(value)] = found
        return found

    def apart(self, path: Path, data: bytes, value: Any) -> tuple[str, int]:
        self.parts.append(Part(path, data))
        shown = preview(data, value)
        return shown, len(encode_json(shown))

    def forget(self, prefix: Path) -> None:
        """Parts found below `prefix` (which now goes apart whole)."""
        self.parts = [p for p in self.parts if p.path[: len(prefix)] != prefix]

    def walk(self, value: Any, path: Path) -> tuple[Any, int]:
        """(what the row keeps of `value`, its JSON size)."""
        self.visits -= 1
        few = isinstance(value, dict | list) and 0 < len(value) <= FANOUT
        if not few or self.visits <= 0 or len(path) > DEPTH or not _plain_keys(value):
            if not isinstance(value, str | dict | list):
                return value, len(encode_json(value))
            data = self.encoded(value)
            if len(data) >= APART_MIN:
                return self.apart(path, data, value)
            return value, len(data)
        mark = len(self.parts)
        if isinstance(value, dict):
            kept, sizes = {}, {}
            for key, item in value.items():
                kept[key], sizes[key] = self.walk(item, (*path, key))
            size = size_of_object(sizes)
        else:
            walked = [self.walk(item, (*path, i)) for i, item in enumerate(value)]
            kept = [k for k, _ in walked]
            size = 2 + sum(s for _, s in walked) + len(walked) - 1
        if size >= APART_MIN:  # still large with its large items apart: apart whole
            del self.parts[mark:]
            return self.apart(path, self.encoded(value), value)
        return kept, size

    def digested(self, parts: list[Part]) -> list[Part]:
        """The parts with their digests, each large value hashed once."""
        digests: dict[int, str] = {}
        out = []
        for part in parts:
            key = id(part.data)
            if key not in digests:
                digests[key] = hashlib.sha256(part.data).hexdigest()
            out.append(Part(part.path, part.data, digests[key]))
        return out


def _plain_keys(value: dict | list) -> bool:
    """An object whose keys are all strings (others become strings in its JSON, and a
    path to them would no longer match): only such objects are looked into."""
    return not isinstance(value, dict) or all(isinstance(key, str) for key in value)


def joined(kept: dict, values: list[tuple[Path, bytes]]) -> dict:
    """The whole payload again: the row's `kept` payload with each value loaded from
    apart back in its place (the containers on its path copied, the rest shared)."""
    for path, data in values:
        if not path:
            return json.loads(data)
    return _placed(kept, [(path, json.loads(data)) for path, data in values])


def joined_json(kept: dict, values: list[tuple[Path, bytes]]) -> bytes:
    """`encode_json(joined(kept, values))`, without parsing the values or encoding them
    again: the row's payload is encoded with a marker in each value's place, and each
    marker is replaced by the value's JSON as stored. A 10 MB value costs the body's
    bytes, not also its text, its parse and the encoder's pieces."""
    for path, data in values:
        if not path:
            return data
    nonce = secrets.token_hex(16)  # no payload can hold it: it is made now
    marked = _placed(kept, [(path, f"\x00{nonce}:{i}") for i, (path, _) in enumerate(values)])
    pieces = re.split(rb'"\\u0000' + nonce.encode() + rb':(\d+)"', encode_json(marked))
    for at in range(1, len(pieces), 2):
        pieces[at] = values[int(pieces[at])][1]
    return b"".join(pieces)


def _placed(kept: dict, values: list[tuple[Path, Any]]) -> dict:
    """`kept` with each value in its place (the containers on its path copied)."""
    if not values:
        return kept
    copied: set[int] = set()
    top = dict(kept)
    copied.add(id(top))
    for path, value in values:
        parent = top
        for step in path[:-1]:
            child = parent[step]
            if id(child) not in copied:
                child = dict(child) if isinstance(child, dict) else list(child)
                copied.add(id(child))
                parent[step] = child
            parent = child
        parent[path[-1]] = value
    return top

"""Which route events a request matches.

Patterns are compiled once per process and kept with the route events they belong to.
The list is reloaded at once in the process that changed a route event (signals) and
at most RELOAD seconds later in every other process: a request that matches nothing
costs a clock read and, when route events exist, one bounded search per pattern.

Matching runs with a time bound (the `regex` library's timeout; the stdlib `re` has
none): a pattern that backtracks catastrophically on some path gives up after
MATCH_TIMEOUT and counts as no match. Forms also refuse such patterns when saved.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import regex
from django.db import DatabaseError

from routes.models import ANY, RouteEvent

log = logging.getLogger("routes.matching")
RELOAD = 1.0  # seconds another process's change may take to apply here
MATCH_TIMEOUT = 0.005  # seconds one pattern may take on one path
PROBE_TIMEOUT = 0.05  # seconds a pattern may take on the probes when it is saved
# Paths that make a backtracking pattern explode (e.g. (a+)+$ on "aaaa…!").
PROBES = ["/" + "a" * 4000 + "!", "/" + "a/" * 2000 + "!", "/" + "0" * 4000 + "x"]


@dataclass(frozen=True)
class Route:
    id: int
    label: str
    method: str
    compiled: regex.Pattern

    def matches(self, method: str, path: str) -> bool:
        if self.method not in (ANY, method):
            return False
        try:
            return self.compiled.search(path, timeout=MATCH_TIMEOUT) is not None
        except TimeoutError:
            log.warning("Route event %r gave up on a %d-character path.", self.label, len(path))
            return False


def compile_pattern(pattern: str) -> regex.Pattern:
    """The compiled pattern, or ValueError saying what is wrong with it."""
    try:
        compiled = regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"Not a valid regular expression: {exc}.") from None
    for probe in PROBES:
        try:
            compiled.search(probe, timeout=PROBE_TIMEOUT)
        except TimeoutError:
            raise ValueError(
                "This pattern takes too long on some paths (catastrophic backtracking, "
                "e.g. nested repeats like (a+)+); write it without nested repeats."
            ) from None
    return compiled


class Matcher:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.loaded_at = float("-inf")
        self.compiled: dict[str, regex.Pattern] = {}
        self.lock = threading.Lock()

    def invalidate(self, **signal_kwargs) -> None:
        self.loaded_at = float("-inf")

    def match(self, method: str, path: str) -> list[Route]:
        if time.monotonic() - self.loaded_at > RELOAD:
            self._reload()
        return [route for route in self.routes if route.matches(method, path)]

    def _reload(self) -> None:
        with self.lock:
            try:
                rows = list(RouteEvent.objects.values_list("id", "label", "method", "pattern"))
            except DatabaseError:
                log.warning("Could not read the route events; keeping the ones known.")
                self.loaded_at = time.monotonic()
                return
            self.routes = [
                Route(pk, label, method, self._compiled(p)) for pk, label, method, p in rows
            ]
            self.loaded_at = time.monotonic()

    def _compiled(self, pattern: str) -> regex.Pattern:
        if pattern not in self.compiled:
            try:
                self.compiled[pattern] = regex.compile(pattern)
            except regex.error:
                self.compiled[pattern] = regex.compile(r"(?!)")  # saved outside the forms
        return self.compiled[pattern]


matcher = Matcher()

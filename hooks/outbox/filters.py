"""Payload filters: a webhook may ask for only the events whose payload matches.

A filter is JSON: a condition, or `{"all": [...]}` / `{"any": [...]}` of them (nested
as deep as you like, up to MAX_DEPTH levels, the values compared with included). A condition names a dotted path into the payload
and one operator:

    {"path": "job.status", "eq": "COMPLETED"}        equal (also "ne")
    {"path": "job.endpoint", "in": ["echo", "sd"]}   one of (also "nin")
    {"path": "job.tags", "exists": true}             present (false: absent)
    {"path": "executionTime", "gt": 1000}            numbers: gt, gte, lt, lte

A path step into a list takes its index (`outputs.0.url`). A path that is not there
matches only `exists: false` and `ne`/`nin`; comparing a non-number with gt/lt is
false. Filters are checked when saved (`validate`, with an error that says where)
and evaluated in emit()'s fan-out (`matches`), only for webhooks that have one.
"""

from __future__ import annotations

from typing import Any

OPERATORS = ("eq", "ne", "in", "nin", "exists", "gt", "gte", "lt", "lte")
MAX_DEPTH = 8
MAX_CONDITIONS = 50
_MISSING = object()


class FilterError(ValueError):
    pass


def validate(spec: Any) -> dict:
    """The filter as given, if it is one; FilterError naming the first problem."""
    count = [0]
    _check(spec, "filter", 0, count)
    return spec


def _check(node: Any, where: str, depth: int, count: list[int]) -> None:
    if depth > MAX_DEPTH:
        raise FilterError(f"{where}: filters nest at most {MAX_DEPTH} levels deep.")
    if not isinstance(node, dict):
        raise FilterError(
            f'{where}: expected an object, like {{"path": "job.status", "eq": "COMPLETED"}}.'
        )
    groups = [key for key in ("all", "any") if key in node]
    if groups:
        if len(node) != 1:
            raise FilterError(f"{where}: 'all' or 'any' stands alone in its object.")
        items = node[groups[0]]
        if not isinstance(items, list) or not items:
            raise FilterError(f"{where}.{groups[0]}: give a non-empty list of conditions.")
        for n, item in enumerate(items):
            _check(item, f"{where}.{groups[0]}[{n}]", depth + 1, count)
        return
    count[0] += 1
    if count[0] > MAX_CONDITIONS:
        raise FilterError(f"{where}: at most {MAX_CONDITIONS} conditions in one filter.")
    path = node.get("path")
    if not isinstance(path, str) or not path or any(not step for step in path.split(".")):
        raise FilterError(
            f"{where}: 'path' must be a dotted path into the payload, e.g. \"job.status\"."
        )
    ops = [key for key in node if key != "path"]
    if len(ops) != 1:
        raise FilterError(
            f"{where}: give exactly one operator besides 'path' (one of {', '.join(OPERATORS)})."
        )
    op, value = ops[0], node[ops[0]]
    if op not in OPERATORS:
        raise FilterError(f"{where}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}.")
    if _deeper_than(value, MAX_DEPTH - depth):
        raise FilterError(f"{where}: filters nest at most {MAX_DEPTH} levels deep, "
                          "the values they compare with included.")  # fmt: skip
    if op in ("in", "nin") and not isinstance(value, list):
        raise FilterError(f"{where}: '{op}' takes a list of values.")
    if op == "exists" and not isinstance(value, bool):
        raise FilterError(f"{where}: 'exists' takes true or false.")
    if op in ("gt", "gte", "lt", "lte") and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise FilterError(f"{where}: '{op}' compares numbers; give a number.")


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether `value` nests objects and lists more than `levels` deep, measured level by
    level (not recursively: a value pasted in a form may be nested a thousand deep)."""
    level = [value]
    for _ in range(max(levels, 0)):
        level = [child for node in level if isinstance(node, dict | list)
                 for child in (node.values() if isinstance(node, dict) else node)]  # fmt: skip
    return any(isinstance(node, dict | list) for node in level)


def matches(spec: dict, payload: Any) -> bool:
    if "all" in spec:
        return all(matches(item, payload) for item in spec["all"])
    if "any" in spec:
        return any(matches(item, payload) for item in spec["any"])
    found = _lookup(payload, spec["path"])
    op = next(key for key in spec if key != "path")
    value = spec[op]
    if op == "exists":
        return (found is not _MISSING) is value
    if op == "eq":
        return found is not _MISSING and found == value
    if op == "ne":
        return found is _MISSING or found != value
    if op == "in":
        return found is not _MISSING and found in value
    if op == "nin":
        return found is _MISSING or found not in value
    if isinstance(found, bool) or not isinstance(found, int | float):
        return False
    return {"gt": found > value, "gte": found >= value, "lt": found < value, "lte": found <= value}[
        op
    ]


def _lookup(payload: Any, path: str) -> Any:
    node = payload
    for step in path.split("."):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return _MISSING
    return node

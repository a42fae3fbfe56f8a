"""How a page shows a stored value: `{{ value|as_json }}` is indented JSON (what a
receiver gets and an API returns), never Python's repr (`{'prompt': 'hi'}`, `None`)."""

from __future__ import annotations

import json

from django import template

import hooks

register = template.Library()


@register.filter
def as_json(value, indent: int = 2) -> str:
    """Indented JSON; a string that is already JSON text is shown as it is."""
    return json.dumps(value, indent=indent or None, ensure_ascii=False, default=str)


@register.filter
def as_json_line(value) -> str:
    """JSON on one line (table cells, cut with truncatechars)."""
    return json.dumps(value, ensure_ascii=False, default=str)


@register.filter
def secret_state(webhook) -> str:
    """A webhook's secret as its owner may know it (set or not; never the value)."""
    return hooks.secret_state(webhook)


@register.filter
def pace_state(webhook) -> str:
    """A webhook's pace: its limits, the pace learned from its receiver, a pause."""
    return hooks.pace_state(webhook)


@register.filter
def health_state(webhook) -> str:
    """A webhook's stage: ok, failing (with its forecast), disabled, recovered."""
    return hooks.health_state(webhook)

"""JSON data templates with SwarmUI's `%tag%` placeholders.

A tag is at most 256 characters without quotes, backslashes or newlines; its
value is inserted JSON-string-escaped (so it is safe inside a JSON string);
an unknown tag is left as it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

TAG = re.compile(r"%([^%\"\\\r\n]{1,256})%")
DISCORD_IMAGE = "[discord_image]"  # SwarmUI: send the event's image to Discord with it


def flatten(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"user": {"name": "A"}}` → `{"user": {...}, "user.name": "A"}`."""
    values: dict[str, Any] = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        values[name] = value
        if isinstance(value, Mapping):
            values.update(flatten(value, name + "."))
    return values


def _escaped(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return json.dumps(text, ensure_ascii=False)[1:-1]


def render(template: str, values: Mapping[str, Any]) -> str:
    def substitute(match: re.Match) -> str:
        name = match.group(1)
        return _escaped(values[name]) if name in values else match.group(0)

    return TAG.sub(substitute, template)


def split_discord_image(template: str) -> tuple[bool, str]:
    """(whether the template starts with SwarmUI's `[discord_image]`, the JSON after it)."""
    template = template.strip()
    if template.startswith(DISCORD_IMAGE):
        return True, template[len(DISCORD_IMAGE) :].strip()
    return False, template


def validate(template: str) -> None:
    """Raise ValueError with a readable message when the template (after an optional
    `[discord_image]` prefix) is not JSON."""
    try:
        json.loads(split_discord_image(template)[1])
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"The data template is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}."
        ) from None
    except RecursionError:  # Python's parser gives up near a thousand levels
        raise ValueError("The data template nests too deeply to be read as JSON.") from None

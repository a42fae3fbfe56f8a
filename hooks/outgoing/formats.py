"""Request bodies for chat platforms (Discord, Slack, Google Chat, Teams).

Each event type's catalog entry has a one-line summary; chat formats send that
line in the platform's shape instead of the raw JSON payload.
"""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import urlsplit

from hooks import catalog
from hooks.models import BodyFormat

DISCORD_LIMIT = 2000

_HOSTS = {
    BodyFormat.DISCORD: ("discord.com", "discordapp.com"),
    BodyFormat.SLACK: ("hooks.slack.com",),
    BodyFormat.GOOGLE_CHAT: ("chat.googleapis.com",),
    BodyFormat.TEAMS: ("webhook.office.com", "logic.azure.com", "powerautomate.com"),
}


def detect(url: str) -> str:
    """The chat platform a URL belongs to, or JSON."""
    host = (urlsplit(url).hostname or "").lower()
    for fmt, hosts in _HOSTS.items():
        if any(host == h or host.endswith("." + h) for h in hosts):
            if fmt == BodyFormat.DISCORD and "/api/webhooks/" not in url:
                continue
            return fmt
    return BodyFormat.JSON


def effective(fmt: str, url: str) -> str:
    return detect(url) if fmt == BodyFormat.AUTO else fmt


class _Lenient(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def message(event_type: str, payload: dict[str, Any]) -> str:
    """The event's one-line human message, filled from its payload."""
    try:
        spec = catalog.get(event_type)
    except catalog.UnknownEventType:
        return event_type
    template = spec.summary or spec.description or event_type
    try:
        return string.Formatter().vformat(template, (), _Lenient(payload))
    except (KeyError, IndexError, AttributeError, ValueError, TypeError):
        return template


def chat_body(fmt: str, text: str) -> dict[str, Any]:
    if fmt == BodyFormat.DISCORD:
        return {"content": text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 1] + "…"}
    if fmt == BodyFormat.TEAMS:
        return {
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "summary": text[:200],
            "text": text,
        }
    return {"text": text}  # Slack, Google Chat

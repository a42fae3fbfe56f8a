"""Request bodies for chat platforms (Discord, Slack, Google Chat, Teams) and for
receivers built against Open WebUI's code.

Each event type's catalog entry has a one-line summary; chat formats send that
line in the platform's shape instead of the raw JSON payload (Teams: a card with the
payload's fields as facts, coloured by the outcome). An event that carries a result (its
type's `chat`: a finished job) is sent as Open WebUI sends its chat notification:
"{title} - {url}\n\n{content}", cut to each platform's limit, and in Open WebUI's code
shape `message` is the content itself.
"""

from __future__ import annotations

import json
import string
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from hooks import catalog
from hooks.models import BodyFormat
from hooks.outgoing import templating

DISCORD_LIMIT = 2000
# Each platform's limit on a message's text, in characters: Discord's `content` 2,000;
# Slack cuts `text` past 40,000; Google Chat's `text` 4,096; a Teams card is at most
# 28 KB and carries the text twice beside up to 20 facts of 300 characters.
LIMITS = {
    BodyFormat.DISCORD: DISCORD_LIMIT,
    BodyFormat.SLACK: 40_000,
    BodyFormat.GOOGLE_CHAT: 4_096,
    BodyFormat.TEAMS: 8_000,
    BodyFormat.TEAMS_WORKFLOW: 8_000,
}
# Teams Workflows (Power Automate) URLs take an Adaptive Card, Office connector URLs
# (webhook.office.com) a MessageCard.
WORKFLOW_HOSTS = ("logic.azure.com", "powerautomate.com", "powerplatform.com")
MAX_FACTS, FACT_LENGTH = 20, 300
# Theme colours by a job's outcome, in RunPod's words and a build's (Djinn's); others:
# Open WebUI's blue.
GREEN, RED, GREY = "2EB886", "D63333", "8A8886"
COLOURS = {"COMPLETED": GREEN, "FAILED": RED, "TIMED_OUT": RED, "CANCELLED": GREY,
           "passed": GREEN, "failed": RED, "timed_out": RED, "killed": GREY}  # fmt: skip
DEFAULT_COLOUR = "0076D7"

_HOSTS = {
    BodyFormat.DISCORD: ("discord.com", "discordapp.com"),
    BodyFormat.SLACK: ("hooks.slack.com",),
    BodyFormat.GOOGLE_CHAT: ("chat.googleapis.com",),
    BodyFormat.TEAMS: ("webhook.office.com",),
    BodyFormat.TEAMS_WORKFLOW: WORKFLOW_HOSTS,
}


@lru_cache(maxsize=4096)
def detect(url: str) -> str:
    """The chat platform a URL belongs to, or JSON (remembered: a pump asks for every
    attempt, mostly of the same few URLs)."""
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


def _spec(event_type: str) -> catalog.EventType | None:
    try:
        return catalog.get(event_type)
    except catalog.UnknownEventType:
        return None


def carries_result(event_type: str) -> bool:
    """Whether the event's chat message is built from its whole payload (a result)."""
    spec = _spec(event_type)
    return spec is not None and spec.chat is not None


def chat_parts(event_type: str, payload: dict[str, Any]) -> catalog.ChatParts | None:
    """(title, url, content) of an event that carries a result, else None."""
    spec = _spec(event_type)
    return spec.chat(payload) if spec is not None and spec.chat is not None else None


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message(event_type: str, payload: dict[str, Any]) -> str:
    """The event's human message: Open WebUI's "{title} - {url}\n\n{content}" for one
    that carries a result, else its one-line summary filled from its payload."""
    spec = _spec(event_type)
    if spec is None:
        return event_type
    if spec.chat is not None:
        title, url, content = spec.chat(payload)
        return f"{title} - {url}\n\n{content}"
    template = spec.summary or spec.description or event_type
    try:
        return string.Formatter().vformat(template, (), _Lenient(payload))
    except (KeyError, IndexError, AttributeError, ValueError, TypeError):
        return template


def body(fmt: str, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON a non-JSON format sends for this event."""
    if fmt == BodyFormat.OPEN_WEBUI:
        return open_webui(event_type, payload)
    text = cut(message(event_type, payload), LIMITS.get(fmt, DISCORD_LIMIT))
    if fmt == BodyFormat.TEAMS:
        return message_card(event_type, payload, text)
    if fmt == BodyFormat.TEAMS_WORKFLOW:
        return adaptive_card(event_type, payload, text)
    if fmt == BodyFormat.DISCORD:
        return {"content": text}
    return {"text": text}  # Slack, Google Chat


def facts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The payload's plain values by dotted name, as a card's facts."""
    found = []
    for name, value in templating.flatten(payload).items():
        if isinstance(value, dict) or value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        found.append((name, text[:FACT_LENGTH]))
    return found[:MAX_FACTS]


def outcome_colour(payload: dict[str, Any]) -> str:
    job = payload.get("job")
    status = payload.get("status") or (job.get("status") if isinstance(job, dict) else None)
    return COLOURS.get(status, DEFAULT_COLOUR) if isinstance(status, str) else DEFAULT_COLOUR


def message_card(event_type: str, payload: dict[str, Any], text: str) -> dict[str, Any]:
    """An Office connector MessageCard, as Open WebUI sends to Teams."""
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": outcome_colour(payload),
        "summary": text[:200],
        "title": text,
        "sections": [
            {
                "activityTitle": text,
                "activitySubtitle": f"webhookhub - {event_type}",
                "facts": [{"name": n, "value": v} for n, v in facts(payload)],
                "markdown": True,
            }
        ],
    }


def adaptive_card(event_type: str, payload: dict[str, Any], text: str) -> dict[str, Any]:
    """The message a Teams Workflows (Power Automate) webhook posts: an Adaptive Card."""
    colour = {"2EB886": "Good", "D63333": "Attention"}.get(outcome_colour(payload), "Default")
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": text, "weight": "Bolder", "size": "Medium",
             "wrap": True, "color": colour},
            {"type": "TextBlock", "text": event_type, "isSubtle": True, "spacing": "None"},
            {"type": "FactSet", "facts": [{"title": n, "value": v} for n, v in facts(payload)]},
        ],
    }  # fmt: skip
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
             "content": card}
        ],
    }  # fmt: skip


def open_webui(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The shapes Open WebUI's code posts (its docs show `{"event": …}` ones): a signup
    is `{action: signup, message, user: <the user as a JSON string>}`, an event that
    carries a result (a finished job) its chat notification `{action: chat, message,
    title, url}`, whose message is the content, whole, as Open WebUI posts it to a
    receiver that is no chat platform."""
    parts = chat_parts(event_type, payload)
    if parts is not None:
        title, url, content = parts
        return {"action": "chat", "message": content, "title": title, "url": url}
    text = message(event_type, payload)
    if payload.get("event") == "new_user":
        user = payload.get("user", {})
        return {"action": "signup", "message": text, "user": json.dumps(user, ensure_ascii=False)}
    return {"action": event_type, "message": text}

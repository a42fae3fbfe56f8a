"""`webhooks forward`: follow a webhook's feed (hooks.tools.feed) and post each delivery
to a URL of the developer's own, signed as the hub signs it, as `stripe listen
--forward-to` does for Stripe. On the hub's machine it reads the feed itself; from a
laptop it reads `GET /api/v1/webhooks/<id>/feed` of a hub elsewhere with an API token.

The target is the developer's own server (usually on localhost), reached by their own
process: it is not a URL a tenant makes the hub request, so the SSRF guard, which keeps
the hub's deliveries off its own network, does not apply to it. Forwarding changes no
delivery: the hub's own attempts, and their guard, go on as before.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from django.utils import timezone

from hooks.models import Webhook
from hooks.tools.feed import NOW, BadCursor, read_feed

PAGE = 20  # deliveries read at a time: their signatures are made when they are read
POLL = 1.0  # seconds between reads of a feed that has nothing new
UNREACHABLE_WAIT = 5.0  # seconds before reading again a hub that did not answer
RESIGN_AFTER = 60.0  # a page read longer ago than this is read again, signed anew
TRIES = 3  # posts of one delivery to a target that fails (5xx, 429, no answer)
BACKOFF = (1.0, 3.0)  # seconds before the second and third
POST_TIMEOUT = 30.0
HUB_TIMEOUT = 30.0


class FeedRefused(Exception):
    """The feed cannot be read and asking again will not help (a refused token, a
    webhook not found, a bad cursor); the message says why."""


class FeedUnreachable(Exception):
    """The hub did not answer, or answered with a server error: asked again later."""


class Feed(Protocol):
    name: str  # the webhook, as the command's lines name it

    def read(self, after: str | None, limit: int) -> dict[str, Any]: ...


@dataclass
class LocalFeed:
    """The feed of a webhook of this hub, read from its database."""

    webhook: Webhook

    @property
    def name(self) -> str:
        return f"webhook {self.webhook.pk} ({self.webhook.name})"

    def read(self, after: str | None, limit: int) -> dict[str, Any]:
        try:
            return read_feed(self.webhook, after, limit)
        except BadCursor as exc:
            raise FeedRefused(str(exc)) from None


@dataclass
class RemoteFeed:
    """The feed of a webhook of a hub elsewhere, read with an API token of someone who
    manages it."""

    hub: str
    token: str
    webhook: str  # id or name
    session: requests.Session = field(default_factory=requests.Session)
    webhook_id: int | None = None

    @property
    def name(self) -> str:
        return f"webhook {self.webhook_id or self.webhook} of {self.hub}"

    def _get(self, path: str, params: dict | None = None) -> Any:
        url = f"{self.hub.rstrip('/')}/api/v1{path}"
        try:
            response = self.session.get(
                url, params=params, timeout=HUB_TIMEOUT,
                headers={"Authorization": f"Bearer {self.token}"},
            )  # fmt: skip
        except requests.RequestException as exc:
            raise FeedUnreachable(f"The hub did not answer ({describe(exc)})") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise FeedUnreachable(f"The hub answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise FeedRefused(f"The hub refused: HTTP {response.status_code}: {_error(response)}")
        return response.json()

    def resolve(self) -> None:
        """The webhook's id, looked up among the token's webhooks when given by name."""
        if self.webhook.isdigit():
            self.webhook_id = int(self.webhook)
            return
        named = [w["id"] for w in self._get("/webhooks") if w["name"] == self.webhook]
        if len(named) != 1:
            raise FeedRefused(
                f"No webhook named {self.webhook!r} that the token's user manages."
                if not named
                else f"Several webhooks are named {self.webhook!r}; use the id."
            )
        self.webhook_id = named[0]

    def read(self, after: str | None, limit: int) -> dict[str, Any]:
        if self.webhook_id is None:
            self.resolve()
        params = {"limit": limit, **({"after": after} if after else {})}
        return self._get(f"/webhooks/{self.webhook_id}/feed", params)


def _error(response: requests.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return type(exc).__name__


def check_target(url: str) -> str:
    """The target URL, if it is an http(s) URL; ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL.")
    return url


def body_bytes(item: dict[str, Any]) -> bytes:
    if item["body_encoding"] == "base64":
        return base64.b64decode(item["body"])
    return item["body"].encode()


def _when(item: dict[str, Any]) -> str:
    made = item["created_at"]
    if isinstance(made, str):  # read over HTTP
        made = datetime.fromisoformat(made)
    return f"{timezone.localtime(made):%Y-%m-%d %H:%M:%S}"


@dataclass
class Forwarder:
    """Reads the feed and posts each delivery to `to`, one line per delivery to `out`,
    until `stop` is set; a target that fails gets a few tries, then the next one."""

    feed: Feed
    to: str
    out: Callable[[str], None]
    stop: threading.Event = field(default_factory=threading.Event)
    session: requests.Session = field(default_factory=requests.Session)
    poll: float = POLL
    clock: Callable[[], float] = time.time

    def begin(self, after: str | None) -> str | None:
        """The cursor to start after: `now` is the feed's end as the hub sees it."""
        return self.feed.read(NOW, 1)["next"] if after == NOW else after

    def run(self, cursor: str | None) -> str | None:
        """Follow the feed from `cursor`; returns the cursor to resume from."""
        while not self.stop.is_set():
            try:
                page = self.feed.read(cursor, PAGE)
            except FeedUnreachable as exc:
                self.out(f"{exc}; reading again in {UNREACHABLE_WAIT:g} s.")
                self.stop.wait(UNREACHABLE_WAIT)
                continue
            cursor, done = self._forward_page(page, cursor)
            if done and not page["has_more"]:
                self.stop.wait(self.poll)
        return cursor

    def _forward_page(self, page: dict[str, Any], cursor: str | None) -> tuple[str | None, bool]:
        """Post the page's deliveries; (the cursor after the last one posted, whether the
        page was done: not when stopped, nor when its signatures grew old)."""
        if not page["deliveries"]:
            return page["next"], True
        for item in page["deliveries"]:
            if self.stop.is_set() or self.clock() - page["signed_at"] > RESIGN_AFTER:
                return cursor, False
            self.out(self.forward(item))
            cursor = item["cursor"]
        return cursor, True

    def forward(self, item: dict[str, Any]) -> str:
        """Post one delivery; its line: when it was made, its event type, its
        webhook-id and what the target answered."""
        head = f"{_when(item)}  {item['event_type']}  {item['id']}"
        if item["body"] is None:
            return f"{head}  not forwarded: {item['body_missing']}"
        if item["signed_headers"] is None:
            return (
                f"{head}  not forwarded: the hub signs it only for those who may change the webhook"
            )
        outcome, tried = "", 0
        for attempt in range(TRIES):
            if attempt:
                self.stop.wait(BACKOFF[attempt - 1])
                if self.stop.is_set():
                    break
            tried += 1
            try:
                response = self.session.post(
                    self.to, data=body_bytes(item), headers=item["signed_headers"],
                    timeout=POST_TIMEOUT, allow_redirects=False,
                )  # fmt: skip
            except requests.RequestException as exc:
                outcome = describe(exc)
                continue
            if response.status_code < 500 and response.status_code != 429:
                return f"{head}  -> {response.status_code}"
            outcome = f"HTTP {response.status_code}"
        return f"{head}  -> {outcome}: not delivered after {tried} tries; going on"


def resume_hint(cursor: str | None) -> str:
    """The option that resumes after the last delivery forwarded."""
    return f"--after {cursor}" if cursor and cursor != NOW else "--from-start"

"""The image a `[discord_image]` template uploads (SwarmUI sends the image it made):
decoded from a base64 `data:image/` URL, or fetched from an http(s) URL with one GET
through the SSRF guard (the connection pinned to the checked address, no redirects
followed, at most IMAGE_CAP bytes, an `image/*` answer only)."""

from __future__ import annotations

import base64
import binascii
import http.client
import re
import ssl
import time
from dataclasses import dataclass
from functools import cache

import certifi
from django.conf import settings as django_settings

from hooks import conf, ssrf
from hooks.conf import IPNetwork
from hooks.outgoing.connections import PinnedHTTPSConnection

IMAGE_CAP = 10 * 1024 * 1024  # bytes: Discord's attachment limit
READ_SIZE = 65536
# SwarmUI's Image.Extension for the types it writes; any other: the media subtype.
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}
# A media type that can go in the upload's part header as it is (no CR/LF, no quotes).
IMAGE_TYPE = re.compile(r"image/[a-z0-9][a-z0-9.+-]{0,100}").fullmatch


class NoImage(Exception):
    """The image could not be had; the message says why (shown in the history)."""


@dataclass(frozen=True)
class Image:
    data: bytes
    media_type: str

    @property
    def filename(self) -> str:
        subtype = self.media_type.partition("/")[2].split("+")[0] or "png"
        return "image." + EXTENSIONS.get(self.media_type, subtype)


def from_data_url(value) -> Image | None:
    """The image of a base64 `data:image/…` URL, or None."""
    if not isinstance(value, str) or not value.startswith("data:image/"):
        return None
    head, sep, data = value.partition(",")
    media_type = head[len("data:") :].split(";")[0].lower()
    if not sep or not head.endswith(";base64") or not IMAGE_TYPE(media_type):
        return None
    try:
        return Image(base64.b64decode(data, validate=True), media_type)
    except (binascii.Error, ValueError):
        return None


def is_url(value) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def fetch_for_upload(url: str, settings: conf.HookSettings, timeout: float) -> Image:
    """Fetch an event's image for its upload. The URL comes from the event (a job's
    output), so the SSRF guard applies a user's exemptions, except to an image of the
    hub's own site (SITE_URL), which the operator's cover."""
    own_site = url.startswith(django_settings.SITE_URL.rstrip("/") + "/")
    allowed = conf.exempt_networks(settings, user_supplied=not own_site)
    connect = min(settings.connect_timeout, timeout)
    return fetch(url, allowed, timeout=timeout, connect_timeout=connect,
                 user_agent=settings.user_agent, cap=IMAGE_CAP)  # fmt: skip


def fetch(url: str, allowed: tuple[IPNetwork, ...], *, timeout: float, connect_timeout: float,
          user_agent: str, cap: int = IMAGE_CAP) -> Image:  # fmt: skip
    """GET the image at `url` within `timeout` seconds; raises NoImage saying why not."""
    deadline = time.monotonic() + timeout
    try:
        target = ssrf.parse(url)
        address = str(ssrf.resolve(target, allowed)[0])
    except ssrf.UnsafeURL as exc:
        raise NoImage(str(exc)) from None
    conn = _connection(target, address, connect_timeout)
    try:
        conn.connect()
        conn.sock.settimeout(_left(deadline))
        conn.request("GET", target.path, headers={"Host": target.host_header,
                     "User-Agent": user_agent, "Accept": "image/*"})  # fmt: skip
        return _read(conn.getresponse(), conn.sock, cap, deadline)
    except (OSError, http.client.HTTPException) as exc:
        raise NoImage(f"Could not fetch the image: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()


def _connection(target: ssrf.Target, address: str, connect_timeout: float):
    if target.scheme == "https":
        return PinnedHTTPSConnection(
            address, target.port, target.host, _ssl_context(), timeout=connect_timeout
        )
    return http.client.HTTPConnection(address, target.port, timeout=connect_timeout)


@cache
def _ssl_context() -> ssl.SSLContext:
    """One context for every image fetched (loading the CA bundle costs ~20 ms)."""
    return ssl.create_default_context(cafile=certifi.where())


def _read(response: http.client.HTTPResponse, sock, cap: int, deadline: float) -> Image:
    """The answer's image: 200, `image/*`, at most `cap` bytes, read by `deadline`."""
    if response.status != 200:
        raise NoImage(f"The image's URL answered {response.status}, not 200.")
    media_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    if not IMAGE_TYPE(media_type):
        raise NoImage(f"The image's URL answered {media_type or 'no content type'}, not an image.")
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > cap:
        raise NoImage(f"The image is {length} bytes; at most {cap} are uploaded.")
    chunks, size = [], 0
    while chunk := response.read1(READ_SIZE):
        size += len(chunk)
        if size > cap:
            raise NoImage(f"The image is over {cap} bytes; at most that is uploaded.")
        chunks.append(chunk)
        sock.settimeout(_left(deadline))
    return Image(b"".join(chunks), media_type)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("The image was not fetched within the webhook's timeout.")
    return left

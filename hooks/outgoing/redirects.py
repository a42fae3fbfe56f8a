"""Redirects: the answer of a webhook that does not follow them, and following them for
one that does (SwarmUI's .NET HttpClient and Djinn's Go net/http both follow).

Only a 3xx answer comes here (`follow_up`; the sender compares the status, which is all
any other answer pays). For a webhook that does not follow redirects a 3xx is its
answer, a failure whose error says where the receiver points. One that does follows
at most MAX_REDIRECTS, each hop a request of its own through the transport, so each is
resolved and checked by the SSRF guard and sent to the address that passed (pinned),
all within the attempt's one timeout, as both clients count theirs.

Which request follows which answer (RFC 9110 §15.4; Go's `redirectBehavior` and .NET's
`RedirectHandler` agree): 307 and 308 send the same method and body again; 301, 302
and 303 turn the POST into a GET without a body (and without the body's headers).
Credentials (Authorization: basic auth; Cookie) stay on the first host and its
subdomains, as Go's client keeps them; once a hop leaves them, later hops do not get
them back. The signature headers stay: they sign this delivery's id, timestamp and body
and reveal no secret, so a receiver behind a 307/308 verifies the delivery as sent.
A redirect from https to http is not followed (as .NET's client refuses it): it would
send the delivery in clear text.
"""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import urldefrag, urljoin

from hooks import ssrf
from hooks.conf import IPNetwork
from hooks.outgoing import transport
from hooks.outgoing.transport import Hop, OutgoingRequest, Result

MAX_REDIRECTS = 5
FOLLOWED = frozenset({301, 302, 303, 307, 308})
TO_GET = frozenset({301, 302, 303})
# Go's list: kept for the first host and its subdomains only.
CREDENTIALS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "cookie2", "www-authenticate",
     "proxy-authenticate"}
)  # fmt: skip
# Headers about the body, left out with it when a redirect turns the POST into a GET.
BODY_HEADERS = frozenset({"content-type", "content-encoding", "content-language",
                          "content-location"})  # fmt: skip
SHOWN_LOCATION = 300  # characters of a Location an error message quotes


def is_redirect(result: Result) -> bool:
    """A 3xx answer: what `follow_up` takes."""
    return result.status is not None and 300 <= result.status < 400


def follow_up(request: OutgoingRequest, first: Result, allowed: tuple[IPNetwork, ...],
              body_cap: int) -> Result:  # fmt: skip
    """The attempt's result after `first`, a 3xx answer to `request`: the hops its
    receiver asks for if the webhook follows redirects, else a failure whose error says
    where it points (so does a 3xx left as the last answer)."""
    if not request.max_redirects:
        first.error = _not_followed(first)
        return first
    return _follow(request, allowed, body_cap, first)


def location(result: Result) -> str | None:
    """The answer's Location header, however it was spelled."""
    for name, value in result.headers.items():
        if name.lower() == "location":
            return value.strip() or None
    return None


def _quoted(url: str) -> str:
    return url if len(url) <= SHOWN_LOCATION else url[:SHOWN_LOCATION] + "…"


def _not_followed(result: Result) -> str:
    where = location(result)
    if where is None or result.status not in FOLLOWED:
        return f"The receiver answered HTTP {result.status}, no redirect to follow: not a success."
    return (
        f"The receiver redirects (HTTP {result.status}) to {_quoted(where)}; this webhook does "
        "not follow redirects: change its URL to the new one, or turn on Follow redirects."
    )


def same_site(host: str, first: str) -> bool:
    """`host` is the first request's host or a subdomain of it (Go's rule for keeping
    credentials); an IP address only matches itself."""
    host, first = host.lower().rstrip("."), first.lower().rstrip(".")
    if host == first:
        return True
    return ":" not in host and not host.replace(".", "").isdigit() and host.endswith("." + first)


class _Chain:
    """The hops of one attempt so far, and what the next request may carry."""

    def __init__(self, request: OutgoingRequest, first: Result) -> None:
        self.first_request, self.first = request, first
        self.request = request  # the last one sent
        self.first_host = ssrf.parse(request.url).host
        self.hops: list[Hop] = [Hop(request.method, request.url, first.status)]
        self.without_credentials = False
        self.deadline = time.monotonic() - first.duration_ms / 1000 + request.timeout
        self.duration_ms = first.duration_ms

    def next_request(self, status: int, url: str) -> OutgoingRequest:
        """The request that follows a redirect (`status`) to `url`."""
        request = self.request
        method, body = request.method, request.body
        if status in TO_GET and method not in ("GET", "HEAD"):
            method, body = "GET", b""
        if not self.without_credentials and not same_site(ssrf.parse(url).host, self.first_host):
            self.without_credentials = True  # for good, as Go's client does
        left: set[str] = set()
        if self.without_credentials:
            left |= CREDENTIALS
        if method == "GET" and not body:
            left |= BODY_HEADERS
        headers = {k: v for k, v in self.first_request.headers.items() if k.lower() not in left}
        remaining = max(self.deadline - time.monotonic(), 0.001)
        return replace(
            request, url=url, method=method, body=body, headers=headers, timeout=remaining,
            connect_timeout=min(request.connect_timeout, remaining),
        )  # fmt: skip

    def sent(self, request: OutgoingRequest, answer: Result) -> None:
        self.request = request
        left = tuple(k for k in self.first_request.headers if k not in request.headers)
        self.hops.append(Hop(request.method, request.url, answer.status, left))
        self.duration_ms += answer.duration_ms

    def end(self, answer: Result, error: str = "") -> Result:
        """The attempt's result: the last answer, timed over every hop."""
        answer.error = error or answer.error
        answer.duration_ms = self.duration_ms
        answer.started_at = self.first.started_at
        answer.hops = tuple(self.hops)
        return answer


def _follow(request: OutgoingRequest, allowed: tuple[IPNetwork, ...], body_cap: int,
            first: Result) -> Result:  # fmt: skip
    chain, answer, followed = _Chain(request, first), first, 0
    while True:
        where = location(answer)
        if answer.status not in FOLLOWED or where is None:
            return chain.end(answer, _not_followed(answer) if is_redirect(answer) else "")
        url = urldefrag(urljoin(chain.request.url, where)).url
        if followed == request.max_redirects:
            return chain.end(answer, f"Stopped after {followed} redirects, the most a webhook "
                             f"follows; the next would go to {_quoted(url)}.")  # fmt: skip
        refusal = _refused(chain.request.url, url)
        if refusal:
            return chain.end(answer, refusal)
        if time.monotonic() >= chain.deadline:
            return chain.end(answer, f"The receiver did not answer within "
                             f"{request.timeout:g}s, redirects included.")  # fmt: skip
        hop = chain.next_request(answer.status, url)
        answer = transport.send(hop, allowed, body_cap)
        followed += 1
        if answer.status is None:  # the guard refused it, or nothing answered
            answer.error = f"Redirect {followed} to {_quoted(url)}: {answer.error}"
        chain.sent(hop, answer)


def _refused(current: str, url: str) -> str:
    """Why the hub does not follow a redirect from `current` to `url`, or ''."""
    try:
        target = ssrf.parse(url)
    except ssrf.UnsafeURL as exc:
        return f"The receiver redirects to {_quoted(url)}, which the hub does not follow: {exc}"
    if target.scheme == "http" and current.lower().startswith("https:"):
        return (
            f"The receiver redirects from https to http ({_quoted(url)}); the hub does not "
            "follow it: the delivery would go unencrypted."
        )
    return ""

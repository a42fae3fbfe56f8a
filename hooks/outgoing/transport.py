"""Sending one HTTP request to a webhook receiver, safely.

The host is resolved and checked by the SSRF guard at send time and the
connection goes to the address that passed, with the original Host header and
TLS server name. Connections are pooled per (address, host) in this process and
share one SSL context, so a new TLS connection does not reload the CA bundle.
One call is one request: a redirect is the answer (`redirects` follows it, for a
webhook that chose to); the response body is read up to a cap. The request and its
answer go over the connection's socket (`exchange`).
"""

from __future__ import annotations

import http.client
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

import certifi

from hooks import conf, process, ssrf
from hooks.conf import IPNetwork
from hooks.outgoing import exchange
from hooks.outgoing.connections import Connection, PinnedHTTPSConnection, Pool


@dataclass
class OutgoingRequest:
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    connect_timeout: float
    verify_tls: bool = True
    # Supplied by a user (their webhook, a job's callback URL), not configured by staff:
    # the SSRF guard applies WEBHOOK_USER_ALLOWED_NETWORKS instead of the operator's.
    user_supplied: bool = False
    shown_body: str | None = None  # history's text of a body that is not all text
    method: str = "POST"  # GET only for a redirect that turned the POST into one
    # Redirects it may follow (`redirects`, the webhook's choice); 0: a 3xx is the answer.
    max_redirects: int = 0


@dataclass(frozen=True)
class Hop:
    """One request of an attempt that followed redirects, as its history shows it."""

    method: str
    url: str
    status: int | None  # None: no answer (the attempt's error says why)
    # Headers of the first request left out of this one (credentials on another host,
    # the body's headers once a redirect dropped the body).
    left_out: tuple[str, ...] = ()

    def record(self) -> dict:
        """As stored with the attempt (Attempt.hops)."""
        out = {"method": self.method, "url": self.url, "status": self.status}
        if self.left_out:
            out["left_out"] = list(self.left_out)
        return out


@dataclass
class Result:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    duration_ms: float = 0.0
    error: str = ""
    address: str = ""
    started_at: datetime | None = None
    hops: tuple[Hop, ...] = ()  # every request, when redirects were followed; else none
    # The delivery's one status that succeeds (RunPod's callbacks: 200); None: any 2xx.
    success_status: int | None = None

    @property
    def ok(self) -> bool:
        if self.success_status is not None:
            return self.status == self.success_status
        return self.status is not None and 200 <= self.status < 300


@cache
def _ssl_context(verify: bool) -> ssl.SSLContext:
    """One context per choice, shared by every connection (loading the CA bundle for
    each new TLS connection costs ~20 ms)."""
    if verify:
        return ssl.create_default_context(cafile=certifi.where())
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _new_pool(target: ssrf.Target, address: str, verify: bool) -> Pool:
    if target.scheme == "https":
        context = _ssl_context(verify)

        def make() -> Connection:
            return PinnedHTTPSConnection(address, target.port, target.host, context, timeout=None)

    else:

        def make() -> Connection:
            return http.client.HTTPConnection(address, target.port)

    # As many idle connections as this process may have requests in flight to one
    # endpoint: a smaller pool closed the surplus after every burst and connected anew.
    return Pool(make, conf.settings().max_in_flight_per_endpoint)


def _pool(target: ssrf.Target, address: str, verify: bool) -> Pool:
    """This process's connection pool to the checked address (kept per pinned address
    and host name, so a pool never serves another host)."""
    key = (target.scheme, address, target.port, target.host, verify)
    state = process.current()
    with state.lock:
        pool = state.pools.get(key)
        if pool is None:
            pool = state.pools[key] = _new_pool(target, address, verify)
        return pool


def close_pools() -> None:
    state = process.current()
    with state.lock:
        for pool in state.pools.values():
            pool.close()
        state.pools.clear()


class _ConnectFailed(Exception):
    """The connection (TCP or TLS) could not be made: the host's next address may."""


def _connect_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return f"TLS error: {exc}"
    if isinstance(exc, TimeoutError):
        return f"Connection timed out (connect timeout {timeout:g}s)."
    return f"Could not connect: Failed to establish a new connection: {exc}"


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"The receiver did not answer within {timeout:g}s."
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _connected(pool: Pool, connect_timeout: float) -> Connection:
    conn, reused = pool.get()
    if not reused:  # a new connection: the connect timeout covers TCP and TLS
        conn.timeout = connect_timeout
        try:
            conn.connect()
        except (OSError, ValueError) as exc:
            conn.close()
            raise _ConnectFailed(_connect_error(exc, connect_timeout)) from exc
    return conn


def _post(conn: Connection, pool: Pool, data: bytes, result: Result, cap: int,
          deadline: float) -> None:  # fmt: skip
    """One request (`data`, as `exchange.request_bytes` wrote it) on `conn`, into `result`;
    the connection goes back to the pool only when its response was read to the end and
    the server keeps it open."""
    reusable = False
    try:
        answer = exchange.exchange(conn.sock, data, cap, deadline)
        result.status, result.headers, result.body = answer.status, answer.headers, answer.body
        reusable = answer.reusable
    finally:
        if reusable:
            pool.put(conn)
        else:
            conn.close()


def send(
    request: OutgoingRequest, allowed: tuple[IPNetwork, ...], body_cap: int = 64 * 1024
) -> Result:
    """Send the request (one: a redirect is its answer); never raises for network, guard
    or protocol errors."""
    started = time.monotonic()
    deadline = started + request.timeout
    result = Result(started_at=datetime.now(UTC))
    try:
        target = ssrf.parse(request.url)
        addresses = ssrf.resolve(target, allowed)
        # Written once, before any connection: a header that cannot be sent opens none.
        data = exchange.request_bytes(
            target.path, {"Host": target.host_header, **request.headers}, request.body,
            request.method,
        )  # fmt: skip
    except (ssrf.UnsafeURL, exchange.BadHeader) as exc:
        result.error = str(exc)
        result.duration_ms = (time.monotonic() - started) * 1000
        return result
    for index, address in enumerate(addresses):
        result.address = str(address)
        remaining = max(deadline - time.monotonic(), 0.001)
        pool = _pool(target, str(address), request.verify_tls)
        try:
            conn = _connected(pool, min(request.connect_timeout, remaining))
            _post(conn, pool, data, result, body_cap, deadline)
            result.error = ""
            break
        except _ConnectFailed as exc:
            result.error = str(exc)
            if index + 1 < len(addresses) and time.monotonic() < deadline:
                continue  # try the host's next checked address
            break
        except exchange.BadAnswer as exc:
            result.error = str(exc)
            break
        except (OSError, ValueError) as exc:
            result.error = _describe(exc, request.timeout)
            break
    result.duration_ms = (time.monotonic() - started) * 1000
    return result

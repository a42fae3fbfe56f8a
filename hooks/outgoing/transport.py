"""Sending one HTTP request to a webhook receiver, safely.

The host is resolved and checked by the SSRF guard at send time and the
connection goes to the address that passed, with the original Host header and
TLS server name. Connections are pooled per (address, host) in this process and
share one SSL context, so a new TLS connection does not reload the CA bundle.
Redirects are never followed; the response body is read up to a cap.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

import certifi
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from hooks import process
from hooks.conf import IPNetwork
from hooks.outgoing import ssrf


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


@dataclass
class Result:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    duration_ms: float = 0.0
    error: str = ""
    address: str = ""
    started_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# Unverified TLS is a per-webhook choice an administrator made (and is recorded);
# urllib3's warning on every such request would only flood the worker log.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

POOL_MAXSIZE = 8


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


def _new_pool(target: ssrf.Target, address: str, verify: bool) -> urllib3.HTTPConnectionPool:
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            maxsize=POOL_MAXSIZE,
            block=False,
            retries=False,
            ssl_context=_ssl_context(verify),
            server_hostname=target.host,
            assert_hostname=target.host if verify else False,
            cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
        )
    return urllib3.HTTPConnectionPool(
        address, target.port, maxsize=POOL_MAXSIZE, block=False, retries=False
    )


def _pool(target: ssrf.Target, address: str, verify: bool) -> urllib3.HTTPConnectionPool:
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


def _describe(exc: BaseException, timeout: float) -> str:
    # NewConnectionError subclasses ConnectTimeoutError, so it goes first.
    if isinstance(exc, NewConnectionError):
        reason = str(exc).split(": ", 1)[-1]
        return f"Could not connect: {reason}"
    if isinstance(exc, ConnectTimeoutError):
        return f"Connection timed out (connect timeout {timeout:g}s)."
    if isinstance(exc, ReadTimeoutError | TimeoutError):
        return f"The receiver did not answer within {timeout:g}s."
    if isinstance(exc, SSLError):
        return f"TLS error: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _read_capped(response: urllib3.BaseHTTPResponse, cap: int, deadline: float) -> bytes:
    """Read at most `cap` bytes; close the connection instead of draining a larger body."""
    chunks, size = [], 0
    try:
        while size <= cap:
            if time.monotonic() > deadline:
                raise TimeoutError("deadline")
            chunk = response.read(min(16384, cap + 1 - size), decode_content=False)
            if not chunk:
                response.release_conn()
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
    except BaseException:
        response.close()
        raise
    response.close()  # unread data left: this connection cannot be reused
    response.release_conn()
    return b"".join(chunks)[:cap]


def send(
    request: OutgoingRequest, allowed: tuple[IPNetwork, ...], body_cap: int = 64 * 1024
) -> Result:
    """POST the request; never raises for network, guard or protocol errors."""
    started = time.monotonic()
    deadline = started + request.timeout
    result = Result(started_at=datetime.now(UTC))
    try:
        target = ssrf.parse(request.url)
        addresses = ssrf.resolve(target, allowed)
    except ssrf.UnsafeURL as exc:
        result.error = str(exc)
        result.duration_ms = (time.monotonic() - started) * 1000
        return result
    headers = {"Host": target.host_header, **request.headers}
    for index, address in enumerate(addresses):
        result.address = str(address)
        remaining = max(deadline - time.monotonic(), 0.001)
        timeout = urllib3.Timeout(connect=min(request.connect_timeout, remaining), read=remaining)
        try:
            response = _pool(target, str(address), request.verify_tls).urlopen(
                "POST",
                target.path,
                body=request.body,
                headers=headers,
                retries=False,
                redirect=False,
                timeout=timeout,
                preload_content=False,
                assert_same_host=False,
                release_conn=False,
            )
            result.status = response.status
            result.headers = dict(response.headers.items())
            result.body = _read_capped(response, body_cap, deadline)
            result.error = ""
            break
        except ConnectTimeoutError as exc:  # includes NewConnectionError
            result.error = _describe(exc, request.connect_timeout)
            if index + 1 < len(addresses) and time.monotonic() < deadline:
                continue  # try the host's next checked address
            break
        except (HTTPError, OSError) as exc:
            result.error = _describe(exc, request.timeout)
            break
    result.duration_ms = (time.monotonic() - started) * 1000
    return result

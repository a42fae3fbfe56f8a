"""The SSRF guard: which URLs and addresses a webhook may reach.

Every outgoing request resolves its host here at send time; the transport then
connects to the address that passed (pinned), so DNS rebinding cannot swap it.
A URL is checked when it is given, too (forms, system checks, `emit(target_url=…)`):
hence a top-level module, below `outgoing/` and the modules that check URLs.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from hooks.conf import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
CGNAT = ipaddress.ip_network("100.64.0.0/10")


class UnsafeURL(ValueError):
    """The URL may not be used as a webhook target; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (IDNA-encoded), without brackets
    port: int
    path: str  # path + query, never empty

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str) -> Target:
    """Syntax rules: http(s) only, a host, no credentials, no CR/LF or spaces."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("The URL is empty.")
    return _parsed(url)


@lru_cache(maxsize=4096)
def _parsed(url: str) -> Target:
    """`parse` for a string, remembered: every attempt parses its URL again, and a pump
    sends thousands a second to a few URLs (a URL that fails raises each time; only the
    syntax is remembered, the address is resolved and checked at every attempt)."""
    if any(c in url for c in "\r\n\t ") or not url.isprintable():
        raise UnsafeURL("The URL contains whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"The URL is malformed ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL(f"Only http and https URLs are allowed, not {scheme or 'no scheme'!r}.")
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("Put credentials in the basic-auth fields, not in the URL.")
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeURL(f"The host {parts.hostname!r} is not a valid domain name.") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in NAT64 or ip in NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    # IPv4-compatible (deprecated ::a.b.c.d)
    if int(ip) >> 32 == 0 and int(ip) > 0xFFFF:
        return ipaddress.IPv4Address(int(ip))
    return None


@lru_cache(maxsize=4096)  # asked at every attempt, of the same few addresses
def refusal(ip: IPAddress, allowed: tuple[IPNetwork, ...]) -> str | None:
    """Why this address may not be contacted, or None when it may (a pure function of
    the address and the networks allowed: remembered, while the host is still resolved
    at every attempt)."""
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refusal(inner, allowed)
            return f"{ip} embeds {inner}, {reason}" if reason else None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is link-local (cloud metadata lives here)"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_unspecified:
        return f"{ip} is unspecified"
    if ip.version == 4 and ip in CGNAT:
        return f"{ip} is in the shared CGNAT range"
    if ip.is_private or not ip.is_global:
        return f"{ip} is a private or reserved address"
    return None


@lru_cache(maxsize=4096)
def _address(text: str) -> IPAddress:
    """A resolved address as an object, without its IPv6 zone."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def resolve(target: Target, allowed: tuple[IPNetwork, ...]) -> list[IPAddress]:
    """Resolve the host; every address must pass, or the whole target is refused."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"Could not resolve {target.host!r}: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        ip = _address(info[4][0])
        if ip not in addresses:
            addresses.append(ip)
    for ip in addresses:
        reason = refusal(ip, allowed)
        if reason:
            raise UnsafeURL(f"Refused {target.host!r}: {reason} (SSRF guard).")
    if not addresses:
        raise UnsafeURL(f"{target.host!r} resolved to no address.")
    return addresses


def literal_refusal(url: str, allowed: tuple[IPNetwork, ...]) -> str | None:
    """A save-time check without DNS: refuse IP literals and localhost names early."""
    target = parse(url)
    host = target.host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        try:
            return refusal(ipaddress.ip_address("127.0.0.1"), allowed) and (
                f"{target.host!r} is a loopback name"
            )
        except ValueError:  # pragma: no cover
            return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:  # legacy spellings resolvers accept: 2130706433, 0x7f000001, 0177.1
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return refusal(ip, allowed)


def check_target(url: str, allowed: tuple[IPNetwork, ...]) -> None:
    """The rules for a URL when it is given (forms, the job API, `emit(target_url=…)`,
    WEBHOOK_URL): syntax, and no internal address written as such. Raises UnsafeURL
    saying why; the full check (DNS included) runs again at every attempt."""
    refusal = literal_refusal(url, allowed)
    if refusal:
        raise UnsafeURL(f"This address is not allowed: {refusal}.")

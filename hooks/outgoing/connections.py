"""Keep-alive HTTP(S) connections to a checked address, pooled per process.

Built on `http.client` rather than urllib3's pools. On the same keep-alive connection
to a local receiver, one POST cost 0.50 ms of CPU through urllib3 against 0.15 ms
through http.client; at the thousand POSTs a second of a fast drain, the difference
is a third of a core. What urllib3 gave us that a webhook sender needs is kept here: the TCP
connection goes to the address the SSRF guard checked while TLS verifies the host's
name, an idle connection the server has closed is found and dropped before it is
used again, and a connection with an unfinished response is never reused. `http.client`
makes the connections (TCP, then TLS); the POST and its answer go over their sockets
by `exchange`, which costs a third of `http.client`'s CPU per request.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
from collections import deque
from collections.abc import Callable

Connection = http.client.HTTPConnection


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to `address`, with the certificate checked for `server_name` (and SNI)."""

    def __init__(
        self, address: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(address, port, timeout=timeout, context=context)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP to the pinned address
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


def dropped(conn: Connection) -> bool:
    """An idle connection that is readable has been closed by the server (or holds
    bytes nobody asked for): either way it cannot carry another request."""
    if conn.sock is None:
        return True
    try:
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):  # closed under us
        return True


class Pool:
    """Idle connections to one (scheme, address, port, host), last used first."""

    def __init__(self, make: Callable[[], Connection], maxsize: int) -> None:
        self.make, self.maxsize = make, maxsize
        self.idle: deque[Connection] = deque()
        self.lock = threading.Lock()

    def get(self) -> tuple[Connection, bool]:
        """A connection and whether it is already connected (an idle one reused)."""
        while True:
            with self.lock:
                conn = self.idle.pop() if self.idle else None
            if conn is None:
                return self.make(), False
            if not dropped(conn):
                return conn, True
            conn.close()

    def put(self, conn: Connection) -> None:
        """Keep a connection whose last response was read to its end."""
        with self.lock:
            if len(self.idle) < self.maxsize:
                self.idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self.lock:
            idle, self.idle = list(self.idle), deque()
        for conn in idle:
            conn.close()

"""A small webhook receiver: records every request and answers as told.

Used by the test suite as a real HTTP server on 127.0.0.1, and by people wiring
up an integration (the `webhooks receive` command builds on it).
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client: tuple = ()
    received_at: float = 0.0
    # When its answer was written whole (time.monotonic()); None until then, and for
    # good if the client had gone (a worker killed with the request on the wire).
    answered_at: float | None = None


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    # Close the connection after answering without saying so, as a server does whose
    # keep-alive time ran out while the client's connection sat idle.
    hang_up: bool = False


Responder = Callable[[Received], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default 5 resets connections under a burst

    def handle_error(self, request, client_address) -> None:
        """Clients that hang up (timeouts) are normal here; anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def __init__(self, address, receiver: Receiver, family):
        self.address_family = family
        self.receiver = receiver
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is visible
    disable_nagle_algorithm = True  # else ~44 ms per answer (delayed ACK)
    server: _Server

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Received(
            self.command,
            self.path,
            dict(self.headers.items()),
            body,
            self.client_address,
            time.monotonic(),
        )
        reply = self.server.receiver.handle(request)
        if reply is None:  # the responder asked to drop the connection
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
        request.answered_at = time.monotonic()
        self.close_connection = self.close_connection or reply.hang_up

    do_POST = do_PUT = do_GET = _handle


class Receiver:
    """`with Receiver() as r:` serves on r.url; r.wait_for(n) blocks until n requests arrived."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        respond: Responder | None = None,
        tls: ssl.SSLContext | None = None,
    ):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.requests: list[Received] = []
        self.respond: Responder = respond or (lambda request: Reply())
        self.released = threading.Event()  # set at stop: lets hanging responders return
        self._cond = threading.Condition()
        self._server = _Server((host, port), self, family)
        self.scheme = "https" if tls else "http"
        if tls:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{host}:{self.port}/hook"

    def handle(self, request: Received) -> Reply | None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
        return self.respond(request)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.requests) >= count, timeout)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

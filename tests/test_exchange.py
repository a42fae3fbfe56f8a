"""The POST and its answer on the wire (hooks/outgoing/exchange.py), against a raw
socket server on 127.0.0.1 that answers exactly the bytes a test gives it."""

from __future__ import annotations

import socket
import threading

import pytest

from hooks import conf
from hooks.outgoing import transport
from tests.conftest import LOOPBACK

NETWORKS = conf.parse_networks(LOOPBACK)


class RawServer:
    """Answers each request on a connection with the next of `answers` (bytes), then
    closes the connection if told; keeps each request's bytes and connection number."""

    def __init__(self, answers: list[bytes], close_after: bool = False) -> None:
        self.answers, self.close_after = list(answers), close_after
        self.requests: list[tuple[int, bytes]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn, self.connections), daemon=True).start()

    def _talk(self, conn: socket.socket, number: int) -> None:
        with conn:
            while self.answers:
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append((number, request))
                conn.sendall(self.answers.pop(0))
                if self.close_after:
                    return

    def close(self) -> None:
        self.sock.close()


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def raw():
    transport.close_pools()
    servers: list[RawServer] = []

    def make(answers: list[bytes], close_after: bool = False) -> RawServer:
        servers.append(RawServer(answers, close_after))
        return servers[-1]

    yield make
    for server in servers:
        server.close()
    transport.close_pools()


def post(url: str, headers: dict | None = None, body: bytes = b'{"n":1}') -> transport.Result:
    request = transport.OutgoingRequest(url, headers or {}, body, timeout=5, connect_timeout=5)
    return transport.send(request, NETWORKS)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_interim_answers_are_skipped_for_the_answer_that_follows(raw):
    server = raw([b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                  b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-Id: 7\r\n\r\ndone"])  # fmt: skip
    result = post(server.url)
    assert (result.status, result.body, result.error) == (201, b"done", "")
    assert result.headers == {"Content-Length": "4", "X-Id": "7"}


def test_a_chunked_answer_is_read_whole_and_its_connection_kept(raw):
    chunked = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    server = raw([chunked, OK])
    first, second = post(server.url), post(server.url)
    assert (first.status, first.body) == (202, b"abcde")
    assert (second.status, second.body) == (200, b"ok")
    assert [number for number, _ in server.requests] == [1, 1]  # one keep-alive connection


def test_an_answer_without_a_length_ends_with_its_connection_which_is_not_reused(raw):
    server = raw([b"HTTP/1.1 200 OK\r\n\r\nuntil the end", OK], close_after=True)
    first, second = post(server.url), post(server.url)
    assert (first.status, first.body, first.error) == (200, b"until the end", "")
    assert second.status == 200
    assert [number for number, _ in server.requests] == [1, 2]


def test_an_answer_that_is_not_http_fails_the_attempt_clearly(raw):
    server = raw([b"SSH-2.0-OpenSSH_9.6\r\n\r\n"])
    result = post(server.url)
    assert result.status is None
    assert result.error.startswith("The receiver's answer is not valid HTTP")


def test_a_connection_closed_mid_answer_fails_the_attempt_clearly(raw):
    server = raw([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"], close_after=True)
    result = post(server.url)
    assert result.status is None
    assert result.error == "The receiver closed the connection before its answer was complete."


def test_bytes_after_the_answer_leave_the_connection_unused(raw):
    server = raw([OK + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", OK])
    first, second = post(server.url), post(server.url)
    assert (first.status, second.status) == (200, 200)
    assert [number for number, _ in server.requests] == [1, 2]  # the second on a new one


def test_a_header_that_would_break_the_request_is_refused_without_showing_its_value(raw):
    server = raw([OK])
    result = post(server.url, {"X-Token": "s3cret\r\nX-Injected: 1"})
    assert result.status is None and server.requests == []
    assert result.error == "The value of the header 'X-Token' contains a line break."
    assert "s3cret" not in result.error
    bad_name = post(server.url, {"X Token": "v"})
    assert bad_name.error == "The header name 'X Token' is not a valid HTTP header name."


def test_the_body_length_is_always_the_hubs_own(raw):
    """A configured Content-Length (or Transfer-Encoding) would tell the receiver where
    the body ends: it is not sent, ours is."""
    server = raw([OK])
    result = post(server.url, {"Content-Length": "1", "Transfer-Encoding": "chunked"}, b"12345")
    assert result.status == 200
    [(_, request)] = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert body == b"12345"
    assert [line for line in lines if line.lower().startswith(b"content-length")] == [
        b"Content-Length: 5"
    ]
    assert not any(line.lower().startswith(b"transfer-encoding") for line in lines)
    assert (
        lines[0] == b"POST /hook HTTP/1.1" and lines[1] == f"Host: 127.0.0.1:{server.port}".encode()
    )

"""The transport: pooled connections, pinning, concurrency, send_now."""

from __future__ import annotations

import select
import threading

import pytest

from hooks import conf, emit, process, send_now
from hooks.models import Delivery
from hooks.outgoing import transport
from hooks.tools.receiver import Receiver, Reply
from hooks.worker.attempt import deliver_due
from tests.conftest import LOOPBACK, TEST_EVENT, make_webhook, verify

LOOPBACK_NETWORKS = conf.parse_networks(LOOPBACK)

pytestmark = pytest.mark.django_db


def test_connections_are_reused_between_deliveries(receiver):
    transport.close_pools()
    make_webhook(receiver.url)
    for n in range(3):
        emit(TEST_EVENT, {"n": n})
        deliver_due()
    assert len(receiver.requests) == 3
    assert len({r.client for r in receiver.requests}) == 1  # one keep-alive connection


def test_a_burst_of_requests_to_one_endpoint_keeps_its_connections(receiver, settings):
    """The pool keeps as many idle connections as may be in flight to one endpoint, so
    the next burst reuses them rather than connecting anew."""
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 12
    transport.close_pools()
    all_open = threading.Barrier(12, timeout=10)

    def together(request):
        all_open.wait()  # every request of the burst is on its own connection
        return Reply(200)

    receiver.respond = together
    request = transport.OutgoingRequest(receiver.url, {}, b"{}", timeout=10, connect_timeout=5)
    for _burst in range(2):
        senders = [
            threading.Thread(target=transport.send, args=(request, LOOPBACK_NETWORKS))
            for _ in range(12)
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
    assert len(receiver.requests) == 24
    assert len({r.client for r in receiver.requests}) == 12


def _idle_connection():
    [pool] = process.current().pools.values()
    [conn] = pool.idle
    return conn


def test_a_connection_the_receiver_closed_while_idle_is_not_reused(receiver):
    """A keep-alive connection the server hung up on is replaced, not failed on."""
    transport.close_pools()
    receiver.respond = lambda request: Reply(200, hang_up=True)
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    idle = _idle_connection()
    assert select.select([idle.sock], [], [], 10)[0]  # the server's close has arrived
    emit(TEST_EVENT, {"n": 2})
    deliver_due()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert len({r.client for r in receiver.requests}) == 2


def test_a_connection_with_a_body_left_unread_is_not_reused(receiver):
    """Past the 64 KiB cap the rest is not read: that connection is closed, and the next
    request does not read the old body as its answer."""
    transport.close_pools()
    receiver.respond = lambda request: Reply(200, body=b"x" * 200_000)
    make_webhook(receiver.url)
    for n in range(2):
        emit(TEST_EVENT, {"n": n})
        deliver_due()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert len({r.client for r in receiver.requests}) == 2


def test_ipv6_loopback_receiver_when_allowed():
    with Receiver(host="::1") as v6:
        make_webhook(v6.url)
        emit(TEST_EVENT, {"n": 1})
        deliver_due()
        assert len(v6.requests) == 1
        assert v6.requests[0].headers["Host"] == f"[::1]:{v6.port}"


def test_a_slow_endpoint_does_not_hold_up_the_others_in_a_batch(receiver):
    """Deliveries in one batch are in flight together: the fast ones land while one hangs."""
    fast_done = threading.Event()
    with Receiver() as slow:
        slow.respond = lambda request: fast_done.wait(10) and Reply(200)
        make_webhook(slow.url, name="slow")
        for i in range(5):
            make_webhook(receiver.url, name=f"fast{i}")

        def watch():
            if receiver.wait_for(5, timeout=10):
                fast_done.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        emit(TEST_EVENT, {"n": 1})
        assert deliver_due() == 6
        watcher.join()
    # The slow receiver only answered after all five fast ones had arrived.
    assert fast_done.is_set()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_send_now_delivers_synchronously_once(receiver):
    webhook = make_webhook(receiver.url)
    attempts = send_now(TEST_EVENT, {"queue": "busy"})
    assert len(attempts) == 1 and attempts[0].response_status == 200
    assert verify(webhook, receiver.requests[0]) == {"queue": "busy"}
    assert Delivery.objects.get().status == "succeeded"


def test_send_now_does_not_retry_a_failure(receiver):
    receiver.respond = lambda request: Reply(500)
    make_webhook(receiver.url)
    [attempt] = send_now(TEST_EVENT, {"queue": "idle"})
    assert attempt.response_status == 500
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert deliver_due() == 0


def test_send_now_to_chosen_webhooks_only(receiver):
    chosen = make_webhook(receiver.url, name="chosen")
    make_webhook(receiver.url, name="other")
    send_now(TEST_EVENT, {}, webhooks=[chosen])
    assert [r.headers["X-Webhookhub-Hook"] for r in receiver.requests] == [str(chosen.pk)]


@pytest.fixture(scope="module")
def ca():
    import trustme

    return trustme.CA()


@pytest.fixture
def tls_receiver(ca):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    with Receiver(tls=context) as r:
        yield r


@pytest.fixture
def trust(ca, monkeypatch):
    """Trust the test CA, as an operator would with an internal CA."""
    import ssl

    context = ssl.create_default_context()
    ca.configure_trust(context)
    shared = transport._ssl_context
    monkeypatch.setattr(
        transport, "_ssl_context", lambda verify: context if verify else shared(verify)
    )
    transport.close_pools()
    yield
    transport.close_pools()


def test_https_is_pinned_but_keeps_the_server_name(tls_receiver, trust):
    """Connects to the checked 127.0.0.1, yet verifies the certificate for 'localhost'."""
    make_webhook(f"https://localhost:{tls_receiver.port}/hook")
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    assert len(tls_receiver.requests) == 1
    assert Delivery.objects.get().status == "succeeded"


def test_https_with_an_untrusted_certificate_fails_clearly(tls_receiver):
    transport.close_pools()
    make_webhook(f"https://localhost:{tls_receiver.port}/hook")
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    assert "TLS error" in Delivery.objects.get().last_error
    assert tls_receiver.requests == []


def test_https_without_verification_when_the_webhook_says_so(tls_receiver):
    make_webhook(f"https://localhost:{tls_receiver.port}/hook", verify_tls=False)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    assert len(tls_receiver.requests) == 1


def test_https_certificate_for_another_name_is_refused(ca, trust):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.example").configure_cert(context)
    with Receiver(tls=context) as wrong:
        make_webhook(f"https://localhost:{wrong.port}/hook")
        emit(TEST_EVENT, {"n": 1})
        deliver_due()
        assert "TLS error" in Delivery.objects.get().last_error
        assert wrong.requests == []

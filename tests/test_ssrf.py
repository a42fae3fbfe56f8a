"""The SSRF guard, with the default settings (no network allowed)."""

from __future__ import annotations

import ipaddress

import pytest

from hooks import emit, ssrf
from hooks.models import Delivery
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db

REFUSED_HOSTS = [
    "127.0.0.1",
    "127.1.2.3",
    "localhost",  # a DNS name resolving to 127.0.0.1
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "169.254.169.254",  # cloud metadata
    "0.0.0.0",
    "224.0.0.1",
    "[::1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[64:ff9b::7f00:1]",  # NAT64
    "[fe80::1]",
    "[fc00::1]",
    "2130706433",  # decimal 127.0.0.1
    "0x7f000001",  # hex
    "0177.0.0.1",  # octal
    "127.1",
]


@pytest.fixture
def default_settings(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    settings.WEBHOOK_USER_ALLOWED_NETWORKS = []


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_default_guard_refuses_internal_addresses(receiver, default_settings, host):
    make_webhook(f"http://{host}:{receiver.port}/hook")
    emit(TEST_EVENT, {"n": 1})
    assert deliver_due() == 1
    delivery = Delivery.objects.get()
    attempt = delivery.attempt_set.get()
    assert "SSRF guard" in attempt.error and "Refused" in attempt.error
    assert attempt.response_status is None
    assert receiver.requests == []  # no packet reached the receiver


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"],
)
def test_public_addresses_pass(address):
    assert ssrf.refusal(ipaddress.ip_address(address), ()) is None


def test_allowed_networks_open_the_guard(receiver, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    make_webhook(f"http://localhost:{receiver.port}/hook")
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    assert len(receiver.requests) == 1
    # The connection went to the checked address, with the original Host header.
    assert receiver.requests[0].headers["Host"] == f"localhost:{receiver.port}"


def test_allowing_ipv4_loopback_does_not_allow_mapped_private_addresses():
    allowed = (ipaddress.ip_network("127.0.0.0/8"),)
    assert ssrf.refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is None
    assert ssrf.refusal(ipaddress.ip_address("::ffff:10.0.0.1"), allowed)


def test_guard_checks_every_attempt_not_only_the_saved_url(receiver, settings):
    """A URL that was fine when saved is refused once its address turns internal."""
    make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    deliver_due()
    assert "SSRF guard" in Delivery.objects.get().attempt_set.get().error
    assert receiver.requests == []


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/x", "Only http and https"),
        ("javascript:alert(1)", "Only http and https"),
        ("http:///nohost", "no host"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://example.com/a b", "whitespace"),
        ("http://example.com:99999/", "malformed"),
        ("", "empty"),
    ],
)
def test_malformed_urls_are_refused(url, message):
    with pytest.raises(ssrf.UnsafeURL, match=message):
        ssrf.parse(url)


def test_unresolvable_host_is_a_clear_error(receiver):
    make_webhook("http://no-such-host.invalid/hook")
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    assert "Could not resolve 'no-such-host.invalid'" in Delivery.objects.get().last_error

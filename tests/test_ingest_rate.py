"""The event ingest's per-token rate limit (INGEST_RATE_LIMIT a minute): 429 with
Retry-After beyond it and nothing written, counted where every web process and machine
sees the same count (the database, or Redis when REDIS_URL is set)."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
import redis

from accounts.models import ApiToken
from api import ratelimit
from api.models import RateWindow
from hooks.models import Event
from tests.test_api_events import declared, paid, post  # noqa: F401 (declared: a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("declared")]


def producer_token(user, name: str) -> str:
    token, raw = ApiToken.issue(user, name)
    token.can_post_events = True
    token.save()
    return raw


def test_posts_beyond_the_limit_get_429_with_retry_after_and_write_nothing(client, ann, settings):
    settings.INGEST_RATE_LIMIT = 3
    settings.REDIS_URL = ""  # counted in the database (the Redis count: below)
    billing, shop = producer_token(ann, "billing"), producer_token(ann, "shop")
    assert [post(client, billing, paid()).status_code for _ in range(3)] == [202] * 3
    refused = post(client, billing, paid())
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= ratelimit.WINDOW
    assert "3 a minute" in refused.json()["error"]
    assert Event.objects.filter(type="invoice.paid").count() == 3
    assert post(client, shop, paid()).status_code == 202  # per token
    # the count is in the database, where every process and machine reads it
    assert sorted(RateWindow.objects.values_list("count", flat=True)) == [1, 4]


def test_a_limit_of_0_lets_every_post_through(client, ann, settings):
    settings.INGEST_RATE_LIMIT = 0
    billing = producer_token(ann, "billing")
    assert {post(client, billing, paid()).status_code for _ in range(5)} == {202}
    assert not RateWindow.objects.exists()


@pytest.fixture
def redis_url():
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for line in server.stdout:  # its log says when it accepts connections
            if "Ready to accept connections" in line:
                break
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait()


def test_with_redis_the_count_lives_in_redis(client, ann, settings, redis_url):
    settings.INGEST_RATE_LIMIT = 2
    settings.REDIS_URL = redis_url
    billing = producer_token(ann, "billing")
    statuses = [post(client, billing, paid()).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    assert not RateWindow.objects.exists()
    counted = redis.Redis.from_url(redis_url).keys("webhookhub:ingest-rate:*")
    assert len(counted) == 1
    assert int(redis.Redis.from_url(redis_url).get(counted[0])) == 3


def test_a_negative_limit_stops_start_up(settings):
    from api.checks import api_settings

    settings.INGEST_RATE_LIMIT = -1
    assert [e.id for e in api_settings()] == ["api.E001"]

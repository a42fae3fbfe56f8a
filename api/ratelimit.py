"""How many events one API token may post: INGEST_RATE_LIMIT a minute (0: no limit).

The count is shared by every web process on every machine: in Redis when REDIS_URL is
set (one INCR a post), in the database otherwise (one row per token and minute). The
window is the clock minute, so a token may post up to twice the limit across a minute's
turn, never more; a post over the limit gets 429 with Retry-After (the seconds to the
next minute) and writes nothing."""

from __future__ import annotations

import logging
import math
import time
from functools import cache

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from api.models import RateWindow

WINDOW = 60  # seconds
logger = logging.getLogger(__name__)


def wait_for(token_id: int) -> int | None:
    """Count one post of this token; None when it is within the limit, else how many
    seconds until the next window opens."""
    limit = settings.INGEST_RATE_LIMIT
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // WINDOW)
    if _count(token_id, window) <= limit:
        return None
    return max(1, math.ceil((window + 1) * WINDOW - now))


def _count(token_id: int, window: int) -> int:
    if settings.REDIS_URL:
        try:
            return _redis_count(token_id, window)
        except Exception:  # redis.RedisError and connection errors: the database still counts
            logger.warning("Redis did not answer; counting API posts in the database.")
    return _database_count(token_id, window)


@cache
def _redis(url: str):
    import redis  # only where REDIS_URL is set

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _redis_count(token_id: int, window: int) -> int:
    key = f"webhookhub:ingest-rate:{token_id}:{window}"
    pipe = _redis(settings.REDIS_URL).pipeline()
    pipe.incr(key)
    pipe.expire(key, 2 * WINDOW)
    count, _ = pipe.execute()
    return int(count)


def _database_count(token_id: int, window: int) -> int:
    """One more post in this token's window, counted in a transaction of its own (the
    row stays locked until it commits, so two processes never read the same count)."""
    rows = RateWindow.objects.filter(token_id=token_id, window=window)
    with transaction.atomic():
        if rows.update(count=F("count") + 1):
            return rows.values_list("count", flat=True).get()
        try:
            with transaction.atomic():
                RateWindow.objects.create(token_id=token_id, window=window, count=1)
        except IntegrityError:  # another process opened the window first
            rows.update(count=F("count") + 1)
            return rows.values_list("count", flat=True).get()
        RateWindow.objects.filter(token_id=token_id, window__lt=window).delete()
        return 1

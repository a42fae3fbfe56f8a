"""Idempotency-Key for API writes, as Stripe and the IETF draft define it: the first
answer is kept for KEPT_FOR; the same key with the same body gets it again and writes
nothing; the same key with another body is refused. Two requests racing with one key
are decided by the unique constraint: the loser gets the winner's answer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from api.models import IdempotencyKey

KEPT_FOR = timedelta(hours=24)
MAX_LENGTH = 255
SCHEDULE = "webhookhub: forget idempotency keys"


class IdempotencyError(ValueError):
    """An Idempotency-Key that cannot be used (malformed, or reused with another body)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def check(key: str) -> str:
    if not 0 < len(key) <= MAX_LENGTH or not key.isprintable():
        raise IdempotencyError(
            f"Idempotency-Key must be 1 to {MAX_LENGTH} printable characters.", status=400
        )
    return key


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _kept(user, key: str) -> IdempotencyKey | None:
    since = timezone.now() - KEPT_FOR
    return IdempotencyKey.objects.filter(user=user, key=key, created_at__gte=since).first()


def _replay(kept: IdempotencyKey, print_: str) -> tuple[int, dict]:
    if kept.fingerprint != print_:
        raise IdempotencyError(
            "This Idempotency-Key was used with another request body; use a new key for "
            "a new request.", status=422,
        )  # fmt: skip
    return kept.status, kept.answer


def once(user, key: str | None, body: bytes, write: Callable[[], tuple[int, dict]]):
    """(status, answer, replayed): `write()` runs in a transaction with the key's row, so
    both commit or neither; a kept answer for the key is returned instead of writing.
    Only successful answers are kept: a refused request may be corrected and sent again
    with the same key."""
    if key is None:
        with transaction.atomic():
            return (*write(), False)
    print_ = fingerprint(body)
    kept = _kept(user, key)
    if kept is not None:
        return (*_replay(kept, print_), True)
    try:
        with transaction.atomic():
            status, answer = write()
            if status < 400:
                expired = timezone.now() - KEPT_FOR
                IdempotencyKey.objects.filter(user=user, key=key, created_at__lt=expired).delete()
                IdempotencyKey.objects.create(
                    user=user, key=key, fingerprint=print_, status=status, answer=answer
                )
    except IntegrityError:  # the same key committed by a request racing this one
        kept = _kept(user, key)
        if kept is None:
            raise
        return (*_replay(kept, print_), True)
    return status, answer, False


def forget_expired() -> int:
    """The hourly task: drop keys older than KEPT_FOR."""
    return IdempotencyKey.objects.filter(created_at__lt=timezone.now() - KEPT_FOR).delete()[0]


def ensure_schedule(**kwargs) -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "api.idempotency.forget_expired",
            "schedule_type": Schedule.HOURLY,
            "repeats": -1,
        },
    )

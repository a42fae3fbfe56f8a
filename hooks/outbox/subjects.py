"""An event's subject (what it is about: "job:42", "namespace:acme", "user:7") and its
sequence number among that subject's events.

The number comes from one upsert on SubjectSequence in emit's transaction: a rolled-back
event takes none, so a subject's numbers have no gaps, and they are given in the order
the events commit (on PostgreSQL the subject's row stays locked until the emitting
transaction ends; SQLite has one writer at a time). Both go out with every delivery of
the event (X-Webhookhub-Subject, X-Webhookhub-Sequence), and a webhook that keeps order
per subject sends a subject's deliveries one at a time (hooks.worker.order).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from urllib.parse import quote

from django.db import connection

from hooks.models import SubjectSequence

MAX_LENGTH = SubjectSequence._meta.get_field("subject").max_length
# It goes out as a header value: visible ASCII only, so no CR/LF, no space to trim.
_ALLOWED = re.compile(r"[\x21-\x7e]+")


def check(subject: object) -> str | None:
    """The subject as given, None for none (None or ""); TypeError / ValueError, with
    the rule, for anything else."""
    if subject is None or subject == "":
        return None
    if not isinstance(subject, str):
        raise TypeError(f"An event's subject is a string, not {type(subject).__name__}.")
    if len(subject) > MAX_LENGTH:
        raise ValueError(f"An event's subject is at most {MAX_LENGTH} characters.")
    if not _ALLOWED.fullmatch(subject):
        raise ValueError(
            "An event's subject is visible ASCII, without spaces (like 'job:42'): "
            "it is sent as a header."
        )
    return subject


@cache
def _upsert_sql(vendor: str) -> str:
    table = connection.ops.quote_name(SubjectSequence._meta.db_table)
    return (
        f"INSERT INTO {table} (subject, last) VALUES (%s, 1) "
        f"ON CONFLICT (subject) DO UPDATE SET last = {table}.last + 1 RETURNING last"
    )


def next_sequence(subject: str) -> int:
    """The subject's next number (1 for its first event), in the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(connection.vendor), [subject])
        return cursor.fetchone()[0]


def subject_of(kind: str, key: object) -> str:
    """The subject of a `kind` of thing by its key ("job", "j-42" → "job:j-42"), always
    one `check` accepts: a key with other characters is percent-encoded, and one too long
    for the column stands as its SHA-256."""
    quoted = quote(str(key), safe="")
    subject = f"{kind}:{quoted}"
    if len(subject) > MAX_LENGTH:
        subject = f"{kind}:sha256-{hashlib.sha256(str(key).encode()).hexdigest()}"
    return subject

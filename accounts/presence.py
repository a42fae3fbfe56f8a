"""Presence, as Open WebUI counts it: a user is active while a page of theirs is open.

Open WebUI knows this from its Socket.IO connections (a user with a connected page is
in its user pool; the last page's disconnect takes them out within seconds). The hub is
plain WSGI, so each open page beats instead (webhookhub/static/webhookhub/presence.js):
at load, every HEARTBEAT seconds while open (visible or in a background tab, as Open
WebUI counts a background tab's socket too), and when it comes back visible or out of
the back/forward cache; on `pagehide` (closed, reloaded, navigated away) or `freeze` it
says goodbye, and its row goes at once. A page whose goodbye is lost (a crash, a dropped
network) stops counting EXPIRES after its last beat.

Why these numbers: browsers throttle a background tab's timers, Chrome down to one wake
a minute after five minutes hidden, so a background page beats every 30 to 60 s. An
expiry of three beats (90 s) outlasts that throttled minute with half a minute to
spare, and bounds how long a page that vanished without a goodbye still counts
(Socket.IO's own ping interval and timeout, 25 + 20 s, bound Open WebUI's). Every
page's beat is one UPDATE (or INSERT) of its own row in the database, which all web
processes and machines share; two tabs are two rows, so closing one keeps the user
present.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from accounts.models import Presence

HEARTBEAT = 30  # seconds between a page's beats (presence.js reads it from the page)
EXPIRES = timedelta(seconds=3 * HEARTBEAT)
PAGE_ID = re.compile(r"^[A-Za-z0-9_-]{8,32}$")


class BadPage(ValueError):
    pass


def _checked(page: str) -> str:
    if not PAGE_ID.match(page or ""):
        raise BadPage("A page id is 8 to 32 letters, digits, '-' or '_'.")
    return page


def session_digest(session_key: str | None) -> str:
    """What a page's row keeps of its login session (never the key itself)."""
    return hashlib.sha256(session_key.encode()).hexdigest() if session_key else ""


def beat(user, page: str, session_key: str | None = None) -> None:
    """The page `page` of `user` is open now (in the login session `session_key`). The
    user's pages that stopped beating without a goodbye are forgotten at the same time."""
    page = _checked(page)
    now = timezone.now()
    session = session_digest(session_key)
    with transaction.atomic():
        Presence.objects.filter(user=user, seen_at__lt=now - EXPIRES).delete()
        updated = Presence.objects.filter(user=user, page=page).update(seen_at=now)
        if not updated:
            Presence.objects.get_or_create(
                user=user, page=page, defaults={"seen_at": now, "session": session}
            )


def gone(user, page: str) -> None:
    """The page closed (its goodbye): it stops counting at once."""
    Presence.objects.filter(user=user, page=_checked(page)).delete()


def logged_out(user, session_key: str | None) -> None:
    """The pages of a session that logged out stop counting at once: their goodbye
    comes after the logout, too late to be taken from a visitor."""
    if session_key:
        Presence.objects.filter(user=user, session=session_digest(session_key)).delete()


def _open_pages():
    return Presence.objects.filter(seen_at__gte=timezone.now() - EXPIRES)


def is_present(user) -> bool:
    """A page of the user's beat within EXPIRES: they are here, and not notified."""
    return _open_pages().filter(user=user).exists()


def with_presence(users: QuerySet) -> QuerySet:
    """Users, each with `present` (is_present's answer) in the same query."""
    return users.annotate(present=Exists(_open_pages().filter(user=OuterRef("pk"))))

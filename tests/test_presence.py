"""Presence as Open WebUI counts it: a user is active while a page of theirs is open
(each open page beats; closing says goodbye; a page silent past the expiry is gone)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import presence
from accounts.events import wants_notification
from accounts.models import Presence

pytestmark = pytest.mark.django_db
User = get_user_model()
BEAT = reverse("accounts:presence")


@pytest.fixture
def ann(client):
    user = User.objects.create_user("ann@example.com", "ann@example.com", "pw", name="Ann")
    client.force_login(user)
    return user


def test_an_open_page_makes_its_user_present_and_its_goodbye_ends_it_at_once(client, ann):
    assert not presence.is_present(ann) and wants_notification(ann)
    assert client.post(BEAT, {"page": "tab-one-aaaa", "state": "open"}).status_code == 204
    assert presence.is_present(ann) and not wants_notification(ann)
    assert client.post(BEAT, {"page": "tab-one-aaaa", "state": "gone"}).status_code == 204
    assert not presence.is_present(ann) and wants_notification(ann)


def test_closing_one_of_two_tabs_keeps_the_user_present(client, ann):
    client.post(BEAT, {"page": "tab-one-aaaa", "state": "open"})
    client.post(BEAT, {"page": "tab-two-bbbb", "state": "open"})
    client.post(BEAT, {"page": "tab-one-aaaa", "state": "gone"})
    assert presence.is_present(ann)
    client.post(BEAT, {"page": "tab-two-bbbb", "state": "gone"})
    assert not presence.is_present(ann)


def test_a_page_silent_past_the_expiry_no_longer_counts(ann):
    """A lost goodbye (a crash, a dropped network): three beats' time after its last."""
    presence.beat(ann, "lost-page-1")
    now = timezone.now()
    Presence.objects.update(seen_at=now - presence.EXPIRES + presence.EXPIRES / 10)
    assert presence.is_present(ann)
    Presence.objects.update(seen_at=now - presence.EXPIRES - presence.EXPIRES / 10)
    assert not presence.is_present(ann) and wants_notification(ann)
    # Its next beat (a throttled background tab waking) makes it count again.
    presence.beat(ann, "lost-page-1")
    assert presence.is_present(ann) and Presence.objects.count() == 1


def test_a_beat_forgets_the_users_pages_that_stopped_beating(ann):
    presence.beat(ann, "old-page-1")
    Presence.objects.update(seen_at=timezone.now() - presence.EXPIRES * 2)
    presence.beat(ann, "new-page-1")
    assert list(Presence.objects.values_list("page", flat=True)) == ["new-page-1"]


def test_the_expiry_outlasts_a_throttled_background_tab():
    """Browsers slow a background tab's timers to one a minute: its beats still come
    before its presence expires."""
    assert presence.EXPIRES.total_seconds() >= max(presence.HEARTBEAT, 60) + 20


@pytest.mark.parametrize(
    "data, status",
    [
        ({"page": "short", "state": "open"}, 400),
        ({"page": "x" * 40, "state": "open"}, 400),
        ({"page": "tab-one-aaaa", "state": "maybe"}, 400),
        ({"page": "bad page id!", "state": "gone"}, 400),
    ],
)
def test_bad_beats_are_refused_and_change_nothing(client, ann, data, status):
    assert client.post(BEAT, data).status_code == status
    assert not Presence.objects.exists()


def test_a_visitor_or_a_beat_without_the_csrf_token_changes_nothing(ann):
    visitor = Client()
    assert visitor.post(BEAT, {"page": "tab-one-aaaa", "state": "open"}).status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ann)
    assert strict.post(BEAT, {"page": "tab-one-aaaa", "state": "open"}).status_code == 403
    assert strict.get(BEAT).status_code == 405
    assert not Presence.objects.exists()


@pytest.mark.parametrize("where", ["/accounts/settings/", "/admin/"])
def test_every_page_of_a_logged_in_user_carries_the_beat_and_a_visitors_none(client, ann, where):
    User.objects.filter(pk=ann.pk).update(is_staff=True, is_superuser=True)
    page = client.get(where).content.decode()
    assert 'src="/static/accounts/presence.js"' in page
    assert f'data-url="{BEAT}" data-every="{presence.HEARTBEAT}"' in page
    assert "presence.js" not in Client().get("/accounts/login/").content.decode()


def test_logging_out_ends_the_presence_of_that_sessions_pages_only(client, ann):
    """A page's goodbye comes after its logout has ended the session (a 401): the logout
    itself ends its pages' presence; another browser's page still counts."""
    client.post(BEAT, {"page": "tab-one-aaaa", "state": "open"})
    other = Client()
    other.force_login(ann)
    other.post(BEAT, {"page": "phone-page-1", "state": "open"})
    client.post(reverse("accounts:logout"))
    assert list(Presence.objects.values_list("page", flat=True)) == ["phone-page-1"]
    assert client.post(BEAT, {"page": "tab-one-aaaa", "state": "gone"}).status_code == 401
    other.post(reverse("accounts:logout"))
    assert not presence.is_present(ann)


def test_the_admins_user_list_says_whose_page_is_open(admin_client, ann):
    presence.beat(ann, "anns-page-1")
    page = admin_client.get("/admin/accounts/user/").content.decode()
    assert "page open now" in page.lower()
    row = page[page.index("ann@example.com") :].split("</tr>")[0]
    assert 'alt="True"' in row

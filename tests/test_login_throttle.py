"""Failed logins are throttled per account and per client address (django-axes), on
the site's login page and the admin's, with a clear page and no password accepted
while paused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db
User = get_user_model()
LOGIN = reverse("accounts:login")
ADMIN_LOGIN = reverse("admin:login")
PASSWORD = "a long and unusual passphrase"


@pytest.fixture
def ann():
    return User.objects.create_user("ann", "ann@example.com", PASSWORD, is_staff=True)


def attempt(client, url, name, password, address="203.0.113.7"):
    return client.post(url, {"username": name, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", [LOGIN, ADMIN_LOGIN])
def test_the_right_password_is_refused_after_too_many_failures(client, ann, settings, url):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert attempt(client, url, "ann@example.com", "wrong").status_code in (200, 429)
    response = attempt(client, url, "ann@example.com", PASSWORD)
    assert response.status_code == 429 and not logged_in(client)
    page = response.content.decode()
    assert "Too many failed logins" in page and "try again" in page


def test_an_account_is_paused_from_any_address(client, ann, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, LOGIN, "ann@example.com", "wrong", address=f"198.51.100.{n}")
    response = attempt(client, LOGIN, "ann@example.com", PASSWORD, address="192.0.2.99")
    assert response.status_code == 429 and not logged_in(client)


def test_an_address_is_paused_for_every_account(client, ann, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, LOGIN, f"nobody{n}@example.com", "wrong")
    assert attempt(client, LOGIN, "ann@example.com", PASSWORD).status_code == 429
    assert (
        attempt(client, LOGIN, "ann@example.com", PASSWORD, address="192.0.2.1").status_code == 302
    )


def test_the_case_of_an_email_does_not_buy_more_attempts(client, ann, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        name = "ann@example.com".upper() if n % 2 else "Ann@Example.com"
        attempt(client, LOGIN, name, "wrong", address=f"198.51.100.{n}")
    assert (
        attempt(client, LOGIN, "ann@example.com", PASSWORD, address="192.0.2.9").status_code == 429
    )


def test_a_success_before_the_limit_starts_the_count_again(client, ann, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, LOGIN, "ann@example.com", "wrong")
    assert attempt(client, LOGIN, "ann@example.com", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, LOGIN, "ann@example.com", "wrong")
    assert attempt(client, LOGIN, "ann@example.com", PASSWORD).status_code == 302


def test_the_pause_ends_after_the_cool_off(client, ann, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, LOGIN, "ann@example.com", "wrong")
    assert attempt(client, LOGIN, "ann@example.com", PASSWORD).status_code == 429
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    assert attempt(client, LOGIN, "ann@example.com", PASSWORD).status_code == 302


def test_a_forged_forwarded_for_header_does_not_buy_more_attempts(client, ann, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": f"x{n}@example.com", "password": "wrong"},
                    REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")  # fmt: skip
    assert attempt(client, LOGIN, "ann@example.com", PASSWORD).status_code == 429

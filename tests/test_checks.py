"""Bad settings stop start-up with a message naming the variable."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "WEBHOOK_ALLOWED_NETWORKS",
            ["10.0.0.0/8", "banana"],
            "WEBHOOK_ALLOWED_NETWORKS: 'banana'",
        ),
        ("WEBHOOK_TIMEOUT", 0, "WEBHOOK_TIMEOUT"),
        ("WEBHOOK_RETRY_SCHEDULE", [], "WEBHOOK_RETRY_SCHEDULE"),
        ("WEBHOOK_BATCH_SIZE", 0, "WEBHOOK_BATCH_SIZE"),
    ],
)
def test_bad_settings_fail_the_system_check(settings, name, value, message):
    setattr(settings, name, value)
    with pytest.raises(SystemCheckError, match=message):
        call_command("check")


def test_default_settings_pass_the_check():
    call_command("check")

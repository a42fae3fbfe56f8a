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
        ("WEBHOOK_FEED_SETTLE_SECONDS", -1, "WEBHOOK_FEED_SETTLE_SECONDS must be between 0"),
        ("WEBHOOK_FEED_SETTLE_SECONDS", 7200, "WEBHOOK_FEED_SETTLE_SECONDS must be between 0"),
    ],
)
def test_bad_settings_fail_the_system_check(settings, name, value, message):
    setattr(settings, name, value)
    with pytest.raises(SystemCheckError, match=message):
        call_command("check")


def test_default_settings_pass_the_check():
    call_command("check")


def test_every_webhook_default_is_defined_once_in_hooks_conf():
    """settings.py takes each WEBHOOK_* default from hooks' SETTING_DEFAULTS, never a
    literal of its own, so the code, the checks and the environment agree."""
    import ast
    from pathlib import Path

    import hooks

    source = Path(__file__).resolve().parent.parent / "webhookhub" / "settings.py"
    read = []
    for node in ast.walk(ast.parse(source.read_text())):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        name = node.args[0]
        if isinstance(name, ast.Constant) and str(name.value).startswith("WEBHOOK_"):
            default = next(k.value for k in node.keywords if k.arg == "default")
            assert isinstance(default, ast.Subscript), f"{name.value} has a literal default"
            assert default.slice.value == name.value
            read.append(name.value)
    settable = set(hooks.SETTING_DEFAULTS) - {"WEBHOOK_MAX_TIMEOUT"}
    assert sorted(read) == sorted(settable)


def test_a_setting_left_out_is_checked_and_used_at_the_same_default(settings):
    from hooks import conf

    del settings.WEBHOOK_RETRY_SCHEDULE
    del settings.WEBHOOK_TIMEOUT
    call_command("check")
    assert conf.settings().retry_schedule == conf.DEFAULT_RETRY_SCHEDULE
    assert conf.settings().timeout == conf.SETTING_DEFAULTS["WEBHOOK_TIMEOUT"]

"""What `make run`'s console shows by default: email as a person reads it, and no INFO
line per failed attempt (VERBOSE shows those)."""

from __future__ import annotations

import io
import logging

from django.core.mail import EmailMessage, get_connection


def test_console_email_reads_as_text_not_raw_mime():
    stream = io.StringIO()
    connection = get_connection("webhookhub.mail.ConsoleEmailBackend", stream=stream)
    EmailMessage(
        "Webhook “ci” disabled", "It kept failing for 5 days: HTTP 503.\nReplay what it missed.",
        "hub@example.com", ["ops@example.com"], connection=connection,
    ).send()  # fmt: skip
    shown = stream.getvalue()
    assert "--- email to ops@example.com: Webhook “ci” disabled" in shown
    assert "It kept failing for 5 days: HTTP 503.\nReplay what it missed." in shown
    assert "Content-Transfer-Encoding" not in shown and "=?utf-8?" not in shown


def test_failed_attempts_are_not_logged_on_a_quiet_console():
    assert not logging.getLogger("hooks.worker.recording").isEnabledFor(logging.INFO)
    assert logging.getLogger("hooks.worker.health").isEnabledFor(logging.WARNING)

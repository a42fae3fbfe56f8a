"""Email on the console when no mail server is set (the default of `make run`): each
message as a person reads it (recipients, subject, text), not its raw MIME, which
encodes a non-ASCII subject or body past reading."""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend as RawConsoleBackend


class ConsoleEmailBackend(RawConsoleBackend):
    def write_message(self, message) -> None:
        recipients = ", ".join(message.recipients())
        self.stream.write(
            f"--- email to {recipients}: {message.subject}\n{message.body.rstrip()}\n---\n"
        )

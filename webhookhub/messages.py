"""Where Django's messages wait for the next page: the server-side session, encrypted.

Django's default (FallbackStorage) puts them in a cookie first, signed but readable by
anyone who holds it; an admin's "shown this once" message carries a new signing secret.
Here they stay in the session row, sealed with the hub's encryption keys (hooks.seal),
and leave it as the page that shows them is made."""

from __future__ import annotations

import json

from django.contrib.messages.storage.cookie import MessageDecoder, MessageEncoder
from django.contrib.messages.storage.session import SessionStorage

import hooks


class SealedSessionStorage(SessionStorage):
    """Messages in the session, encrypted (settings.MESSAGE_STORAGE)."""

    def serialize_messages(self, messages) -> str:
        return hooks.seal(MessageEncoder().encode(messages))

    def deserialize_messages(self, data):
        if not data or not isinstance(data, str):
            return data
        opened = hooks.unseal(data)
        return json.loads(opened, cls=MessageDecoder) if opened else []

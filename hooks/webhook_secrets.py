"""What a webhook's signing secret is: `whsec_` and the base64 of 24 to 64 random bytes.

Made and checked when a webhook is saved (forms, slots, the management API) and read
back to its key when a request is signed (`hooks.outgoing.signing`).
"""

from __future__ import annotations

import base64
import binascii
import secrets

SECRET_PREFIX = "whsec_"


def generate_secret(nbytes: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"A secret starts with {SECRET_PREFIX!r}.")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError("The part after 'whsec_' is not valid base64.") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("A secret holds 24 to 64 random bytes.")
    return key

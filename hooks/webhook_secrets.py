"""What a webhook's signing secret is: the hub's own, `whsec_` and the base64 of 24 to 64
random bytes, or one its owner pasted (Djinn's or APIO's: any 16-256 printable
characters, kept as typed so the receiver that already knows it keeps working).

Made and checked when a webhook is saved (hooks.configure, slots) and read back to its
key when a request is signed (`hooks.outgoing.signing`).
"""

from __future__ import annotations

import base64
import binascii
import secrets

SECRET_PREFIX = "whsec_"
PASTED_LENGTH = (16, 256)


def generate_secret(nbytes: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: the bytes of a `whsec_<base64>` secret, else the secret's
    own UTF-8 bytes (a pasted Djinn or APIO secret). ValueError when it is neither."""
    if not secret.startswith(SECRET_PREFIX):
        return _pasted_key(secret)
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError("The part after 'whsec_' is not valid base64.") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("A whsec_ secret holds 24 to 64 random bytes.")
    return key


def _pasted_key(secret: str) -> bytes:
    shortest, longest = PASTED_LENGTH
    if not shortest <= len(secret) <= longest:
        raise ValueError(
            f"A secret is {shortest} to {longest} characters long (this one has {len(secret)}), "
            f"or '{SECRET_PREFIX}' followed by base64."
        )
    if not secret.isprintable():
        raise ValueError("A secret may not contain line breaks, tabs or control characters.")
    if secret != secret.strip():
        raise ValueError("A secret may not start or end with a space.")
    return secret.encode()

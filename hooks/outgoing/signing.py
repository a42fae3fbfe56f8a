"""Secrets and signatures (Standard Webhooks v1, and GitHub-style for old receivers)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from functools import lru_cache

SECRET_PREFIX = "whsec_"


def generate_secret(nbytes: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


# A pasted secret that is not the hub's own shape (Djinn's or APIO's: any string the
# owner typed) is kept as typed, so the receiver that already knows it keeps working.
PASTED_LENGTH = (16, 256)


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


# Signing decodes the same few secrets at every attempt (forms and commands that only
# check a secret call `secret_key` itself and leave nothing here).
_signing_key = lru_cache(maxsize=1024)(secret_key)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64 HMAC-SHA256>` signature over `{id}.{timestamp}.{body}`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(_signing_key(secret), signed, "sha256")  # one call into OpenSSL
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per active secret (two while rotating)."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def github_signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>` keyed with the secret string as shown, as GitHub receivers expect."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

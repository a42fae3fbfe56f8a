"""Signatures (Standard Webhooks v1, and GitHub-style for old receivers); what a secret
is, and how one is made, is `hooks.webhook_secrets`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from hooks.webhook_secrets import secret_key

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

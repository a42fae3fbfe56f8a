"""The namespace events, named as Djinn CI names them, and their payloads. Every payload
carries `namespace` (which namespace it came from); nothing secret is in any of them:
a masked variable's value is Djinn's mask (`xxxxxx`), and a key is a public key. Each
resource is under Djinn's key for it (`variable`, `key`, `cron`, `image`, `object`)."""

from __future__ import annotations

import hooks
from hooks import NAMESPACE

INVITE_SENT, INVITE_ACCEPTED, INVITE_REJECTED = "invite.sent", "invite.accepted", "invite.rejected"
NAMESPACES, VARIABLES, SSH_KEYS = "namespaces", "variables", "ssh_keys"
CRON, IMAGES, OBJECTS = "cron", "images", "objects"
CREATED, UPDATED, DELETED = "created", "updated", "deleted"

_NS = {"id": 7, "name": "acme", "path": "acme", "description": "", "visibility": "private",
       "owner": {"id": 1, "name": "Ann"}, "url": "https://hub.example.com/namespaces/acme/"}  # fmt: skip
_INVITER = {"id": 1, "name": "Ann", "email": "ann@example.com"}
# Sent: only the address the owner typed (whether it has an account is never said);
# answered: the invitee, who showed who they are by answering.
_SENT = {"inviter": _INVITER, "invitee": {"email": "bob@example.com"}}
_PEOPLE = {"inviter": _INVITER, "invitee": {"id": 2, "name": "Bob", "email": "bob@example.com"}}
_AUTHOR = {"id": 1, "name": "Ann", "email": "ann@example.com"}
_VARIABLE = {"id": 3, "namespace": {"id": 7, "path": "acme"}, "author": _AUTHOR,
             "created_at": "2026-12-02T10:00:00+00:00", "key": "REGION", "masked": False,
             "value": "eu-west-1"}  # fmt: skip
_KEY = {"id": 4, "namespace": {"id": 7, "path": "acme"}, "author": _AUTHOR,
        "created_at": "2026-12-02T10:00:00+00:00", "name": "deploy",
        "fingerprint": "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
        "public_key": "ssh-ed25519 AAAAC3Nza… deploy@ci"}  # fmt: skip

_CRON = {"id": 5, "namespace": {"id": 7, "path": "acme"}, "author": _AUTHOR,
         "created_at": "2026-12-02T10:00:00+00:00", "name": "nightly", "schedule": "daily",
         "expression": "0 0 * * *", "endpoint": "echo", "input": {"prompt": "hi"},
         "next_run": "2026-12-03T00:00:00+00:00"}  # fmt: skip
_FILE = {"id": 6, "namespace": {"id": 7, "path": "acme"}, "author": _AUTHOR,
         "created_at": "2026-12-02T10:00:00+00:00", "name": "debian-12.qcow2", "size": 524288000,
         "content_type": "application/octet-stream"}  # fmt: skip

TYPES = [
    (INVITE_SENT, "The owner invited an email address to the namespace (the invitee is "
     "the address as typed, whether or not it has an account).",
     {"namespace": _NS, **_SENT}, "{invitee[email]} was invited to {namespace[path]}"),
    (INVITE_ACCEPTED, "An invited user accepted and is now a collaborator (Djinn's "
     "collaborator_joined).", {"namespace": _NS, **_PEOPLE},
     "{invitee[name]} joined {namespace[path]}"),
    (INVITE_REJECTED, "An invited user rejected the invite.", {"namespace": _NS, **_PEOPLE},
     "{invitee[name]} declined to join {namespace[path]}"),
    (NAMESPACES, "The namespace was changed (its description or visibility), a collaborator "
     "removed or a sub-namespace created.",
     {"action": UPDATED, "namespace": _NS}, "Namespace {namespace[path]} {action}"),
    (VARIABLES, "A variable was created, updated or deleted (a masked value is sent as "
     "Djinn's mask, xxxxxx).",
     {"action": CREATED, "variable": _VARIABLE, "namespace": _NS},
     "Variable {variable[key]} {action} in {namespace[path]}"),
    (SSH_KEYS, "An SSH key was created, updated or deleted.",
     {"action": CREATED, "key": _KEY, "namespace": _NS},
     "SSH key {key[name]} {action} in {namespace[path]}"),
    (CRON, "A cron job was created, updated or deleted.",
     {"action": CREATED, "cron": _CRON, "namespace": _NS},
     "Cron job {cron[name]} {action} in {namespace[path]}"),
    (IMAGES, "An image was created, renamed or deleted.",
     {"action": CREATED, "image": _FILE, "namespace": _NS},
     "Image {image[name]} {action} in {namespace[path]}"),
    (OBJECTS, "An object was created, renamed or deleted.",
     {"action": CREATED, "object": {**_FILE, "name": "cache.tar.gz"}, "namespace": _NS},
     "Object {object[name]} {action} in {namespace[path]}"),
]  # fmt: skip


def register() -> None:
    for name, description, example, summary in TYPES:
        hooks.register_event_type(
            name, description, scopes=(NAMESPACE,), example=example, summary=summary
        )


def emit(event_type: str, namespace, payload: dict) -> None:
    """One namespace event, to that namespace's webhooks only (call inside the change's
    transaction: a rolled-back change sends nothing)."""
    hooks.emit(
        event_type,
        {**payload, "namespace": namespace.as_payload()},
        namespace=namespace.key,
        audience=(NAMESPACE,),
        subject=hooks.subject_of("namespace", namespace.key),
    )


def invite(event_type: str, invite) -> None:
    payload = invite.as_payload() if event_type == INVITE_SENT else invite.answered_payload()
    emit(event_type, invite.namespace, payload)


def namespace_changed(namespace, action: str, **extra) -> None:
    emit(NAMESPACES, namespace, {"action": action, **extra})


RESOURCE_EVENTS = {"variable": VARIABLES, "key": SSH_KEYS, "cron": CRON, "image": IMAGES,
                   "object": OBJECTS}  # fmt: skip


def resource(kind: str, item, action: str) -> None:
    """`{"action": …, "<kind>": {…}}` under the event named after the kind's plural."""
    emit(RESOURCE_EVENTS[kind], item.namespace, {"action": action, kind: item.as_payload()})

"""Named server webhooks ("slots"): the signup webhook, SwarmUI's queue hooks, ...

A slot is one server webhook with a fixed event type, configured on the admin's
Server configuration page as a URL and JSON data. A slot may also take its URL from
an environment variable (Open WebUI's WEBHOOK_URL); a URL saved in the admin wins.
Apart from that a slot's webhook is an ordinary webhook: secret, format, history.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db import transaction

from hooks import process
from hooks.models import Scope, Webhook
from hooks.webhook_secrets import generate_secret

ADMIN, ENV = "admin", "env"


@dataclass(frozen=True)
class Slot:
    name: str
    label: str
    event_type: str
    env_var: str = ""
    help: str = ""
    blank_data: str = ""  # the data template of a new slot webhook ("{}": SwarmUI's blank)
    # Seconds a send waits for the receiver, unless the slot's webhook sets its own
    # (SwarmUI's blocking hooks wait up to 10 minutes); None: WEBHOOK_TIMEOUT.
    timeout: float | None = None
    # Whether a new webhook of the slot follows redirects (SwarmUI's .NET client does;
    # Open WebUI's, behind the signup webhook, does not by default).
    follow_redirects: bool = False


_slots: dict[str, Slot] = {}


def register_slot(slot: Slot) -> Slot:
    if slot.name in _slots and _slots[slot.name] != slot:
        raise ValueError(f"Slot {slot.name!r} is already registered differently.")
    _slots[slot.name] = slot
    return slot


def all_slots() -> list[Slot]:
    return list(_slots.values())


def get(name: str) -> Slot:
    return _slots[name]


def webhook(name: str) -> Webhook | None:
    return Webhook.objects.filter(slot=name).first()


def effective(name: str) -> tuple[str, str]:
    """(URL in effect, where it comes from: 'admin', 'env' or '')."""
    hook = webhook(name)
    if hook and hook.slot_source == ADMIN and hook.url:
        return hook.url, ADMIN
    env_url = os.environ.get(get(name).env_var, "") if get(name).env_var else ""
    return (env_url, ENV) if env_url else ("", "")


def _new(slot: Slot, url: str, source: str) -> Webhook:
    return Webhook(
        name=slot.label,
        url=url,
        slot=slot.name,
        slot_source=source,
        scope=Scope.SERVER,
        event_types=[slot.event_type],
        secret=generate_secret(),
        data_template=slot.blank_data,
        timeout=slot.timeout,
        follow_redirects=slot.follow_redirects,
    )


@transaction.atomic
def sync_env(name: str) -> None:
    """Make the slot's webhook follow its environment variable, unless the admin set it."""
    slot = get(name)
    if not slot.env_var:
        return
    url = os.environ.get(slot.env_var, "")
    hook = Webhook.objects.select_for_update().filter(slot=name).first()
    if hook and hook.slot_source == ADMIN:
        return
    if not url:
        if hook:
            hook.delete()
        return
    if hook is None:
        _new(slot, url, ENV).save()
    elif hook.url != url:
        hook.url = url
        hook.save(update_fields=["url", "updated_at"])


def sync_all_env(**signal_kwargs) -> None:
    """Every env-fed slot in line with its variable (also run after each migrate)."""
    for slot in all_slots():
        sync_env(slot.name)


def sync_env_once(**signal_kwargs) -> None:
    """Bring env-fed slots in line once per process, in a transaction of their own.

    Connected to `request_started` (web processes; `post_migrate` syncs too), so it runs
    before any view and never inside a caller's transaction: a rollback there could
    otherwise undo the sync while the process believed it done. The slot's own sends
    (`send_to_slot`) and the Server configuration page sync again each time.
    """
    state = process.current()
    if not state.env_slots_synced:
        sync_all_env()
        state.env_slots_synced = True


@transaction.atomic
def save(name: str, url: str, data_template: str | None = None) -> Webhook | None:
    """The admin's value: a URL takes the slot over; a blank URL gives it back to the env."""
    slot = get(name)
    hook = Webhook.objects.select_for_update().filter(slot=name).first()
    if not url:
        if hook and hook.slot_source == ADMIN:
            hook.delete()
        sync_env(name)
        return webhook(name)
    if hook is None:
        hook = _new(slot, url, ADMIN)
    hook.url, hook.slot_source = url, ADMIN
    if data_template is not None:
        hook.data_template = data_template.strip() or slot.blank_data
    hook.save()
    return hook


@dataclass(frozen=True)
class SlotSetting:
    """A value shown with the slots on the Server configuration page (e.g. Queue End
    Delay), stored by the app that owns it."""

    name: str
    label: str
    field: Callable[[], forms.Field]
    get: Callable[[], Any]
    set: Callable[[Any], None]


_settings: dict[str, SlotSetting] = {}


def register_slot_setting(setting: SlotSetting) -> SlotSetting:
    _settings[setting.name] = setting
    return setting


def all_settings() -> list[SlotSetting]:
    return list(_settings.values())

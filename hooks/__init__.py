"""webhookhub's delivery engine. Other apps import only what is named here (and
`hooks.models`); nothing outside `hooks/` knows about HTTP, signing, retries or
django-q2.

Sending:      emit, send_now, send_to_slot
Registering:  register_event_type, Slot, register_slot, SlotSetting,
              register_slot_setting, SERVER, USER, NAMESPACE, SCOPES
Validating:   validate_target_url, validate_secret, generate_secret, WebhookForm (the
              admin's form of a webhook: the management API creates server webhooks with it)
Listing:      event_types() (every registered type, with its scopes),
              is_declared_event_type(name) (declared by staff, for outside producers)
Namespaces:   register_namespaces(label, find) (how the admin names and finds them)
Storing:      EncryptedTextField (a model field encrypted at rest, as webhook secrets are)
Settings:     settings() (current values), SETTING_DEFAULTS, DEFAULT_RETRY_SCHEDULE
Operating:    send_test, redeliver, replay, delivery_attempts (for owners' delivery pages),
              validate_payload_filter, filter_preview (a filter's effect on recent events)
Workers:      cluster_stopping() (this worker's cluster was asked to stop)
Metrics:      metrics_view (GET /metrics), register_metrics(collector) (an app's figures)
Errors:       UnknownEventType, PayloadTooLarge, UnsafeURL
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from hooks.catalog import (
    NAMESPACE,
    SCOPES,
    SERVER,
    USER,
    UnknownEventType,
    event_types,
    is_declared_event_type,
    register_event_type,
)
from hooks.conf import DEFAULT_RETRY_SCHEDULE, SETTING_DEFAULTS, VERSION, settings
from hooks.scopes import register_namespaces

if TYPE_CHECKING:
    from hooks.encryption import EncryptedTextField
    from hooks.outbox.event import PayloadTooLarge, emit
    from hooks.slots import Slot, SlotSetting, register_slot, register_slot_setting
    from hooks.ssrf import UnsafeURL
    from hooks.tools.forms import (
        WebhookForm,
        validate_payload_filter,
        validate_secret,
        validate_target_url,
    )
    from hooks.tools.metrics import metrics_view, register_metrics
    from hooks.tools.ping import send_test
    from hooks.tools.redelivery import redeliver, replay
    from hooks.tools.shown import delivery_attempts, filter_preview
    from hooks.webhook_secrets import generate_secret
    from hooks.worker.send_now import send_now, send_to_slot
    from hooks.worker.stopping import cluster_stopping

__version__ = VERSION

# Public name -> (module, name there). These modules import models, which do not exist
# while Django loads this app, so they are imported on first use (PEP 562).
_LAZY = {
    "emit": ("hooks.outbox.event", "emit"),
    "PayloadTooLarge": ("hooks.outbox.event", "PayloadTooLarge"),
    "send_now": ("hooks.worker.send_now", "send_now"),
    "metrics_view": ("hooks.tools.metrics", "metrics_view"),
    "register_metrics": ("hooks.tools.metrics", "register_metrics"),
    "send_to_slot": ("hooks.worker.send_now", "send_to_slot"),
    "generate_secret": ("hooks.webhook_secrets", "generate_secret"),
    "UnsafeURL": ("hooks.ssrf", "UnsafeURL"),
    "Slot": ("hooks.slots", "Slot"),
    "SlotSetting": ("hooks.slots", "SlotSetting"),
    "register_slot": ("hooks.slots", "register_slot"),
    "register_slot_setting": ("hooks.slots", "register_slot_setting"),
    "validate_target_url": ("hooks.tools.forms", "validate_target_url"),
    "validate_secret": ("hooks.tools.forms", "validate_secret"),
    "WebhookForm": ("hooks.tools.forms", "WebhookForm"),
    "EncryptedTextField": ("hooks.encryption", "EncryptedTextField"),
    "send_test": ("hooks.tools.ping", "send_test"),
    "redeliver": ("hooks.tools.redelivery", "redeliver"),
    "delivery_attempts": ("hooks.tools.shown", "delivery_attempts"),
    "filter_preview": ("hooks.tools.shown", "filter_preview"),
    "validate_payload_filter": ("hooks.tools.forms", "validate_payload_filter"),
    "replay": ("hooks.tools.redelivery", "replay"),
    "cluster_stopping": ("hooks.worker.stopping", "cluster_stopping"),
}

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "EncryptedTextField",
    "NAMESPACE",
    "SCOPES",
    "SERVER",
    "SETTING_DEFAULTS",
    "USER",
    "PayloadTooLarge",
    "Slot",
    "SlotSetting",
    "UnknownEventType",
    "UnsafeURL",
    "WebhookForm",
    "__version__",
    "cluster_stopping",
    "delivery_attempts",
    "filter_preview",
    "replay",
    "validate_payload_filter",
    "emit",
    "event_types",
    "is_declared_event_type",
    "metrics_view",
    "register_metrics",
    "generate_secret",
    "redeliver",
    "register_event_type",
    "register_namespaces",
    "register_slot",
    "register_slot_setting",
    "send_now",
    "send_test",
    "send_to_slot",
    "settings",
    "validate_secret",
    "validate_target_url",
]


def __getattr__(name: str):
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'hooks' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

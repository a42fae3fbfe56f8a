"""webhookhub's delivery engine. Other apps import only what is named here (and
`hooks.models`); nothing outside `hooks/` knows about HTTP, signing, retries or
django-q2.

Sending:      emit, send_now, send_to_slot, subject_of (an event's subject: "job:42")
Registering:  register_event_type, Slot, register_slot, SlotSetting,
              register_slot_setting, SERVER, USER, NAMESPACE, SCOPES
Configuring:  new_webhook, configure_webhook, prepare_webhook (check, then Plan.save()),
              rotate_secret, SecretChange (keep / generate / paste / remove), WebhookConfigForm
              (the secret's form fields, the same on every webhook form)
Validating:   validate_target_url, validate_secret, generate_secret
Listing:      event_types() (every registered type, with its scopes),
              is_declared_event_type(name) (declared by staff, for outside producers)
Namespaces:   register_namespaces(label, find, owner_email) (how the admin names and finds
              them, and whom their webhooks' alerts email),
              register_webhook_page(scope, page) (where an owner sees a webhook: the
              link in its alert emails)
Storing:      EncryptedTextField (a model field encrypted at rest, as webhook secrets are),
              seal / unseal (text encrypted with the same keys for a short stay elsewhere)
Settings:     settings() (current values), SETTING_DEFAULTS, DEFAULT_RETRY_SCHEDULE,
              NAMESPACE_TIMEOUT (a namespace webhook's timeout when it sets none)
Operating:    send_test, redeliver, replay, stop_retrying, delivery_attempts (owners' pages),
              body_expired(delivery) (why it cannot be sent again: its body expired),
              recent_deliveries → DeliveryRow (every webhook page's table, _deliveries.html;
              admin_recent_deliveries on admin pages),
              SearchForm, search_results, search_page, retry_search (the history's
              search and "send again everything it found", the same on every surface),
              secret_state (set or not, never the value), health_state (ok, failing
              with its forecast, disabled, recovered; _health.html), pace_state (its
              pace: limits in force, learned, paused; _pace_state.html) and pace_fields
              (the same for the API), snooze_alerts(webhook,
              days) (SNOOZE_DAYS: the owner's alert emails paused; snooze_from_form for
              the pages' form), secret_shown_once (a just-made
              secret's one-time message, with Copy; value_shown_once for other keys), keep_shown_once / take_shown_once
              (a just-made secret kept encrypted in the session for its own page),
              validate_payload_filter, filter_preview (a filter's effect on recent events),
              read_feed (a webhook's deliveries in order from a cursor, signed again for
              forwarding; BadCursor for a cursor that is not its feed's)
Workers:      cluster_stopping() (this worker's cluster was asked to stop)
Metrics:      metrics_view (GET /metrics), register_metrics(collector) (an app's figures)
Errors:       UnknownEventType, PayloadTooLarge, UnsafeURL
Version:      VERSION (the hub's version, as the API documents and the User-Agent give it)
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

# Every public name, imported from the module that defines it under that name. Type
# checkers and IDEs read these imports; at run time `_MODULES` is read from them and each
# name is imported on first use (PEP 562, `__getattr__` below): most of these modules
# import models, which do not exist while Django loads this app.
if TYPE_CHECKING:
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
    from hooks.conf import (
        DEFAULT_RETRY_SCHEDULE,
        NAMESPACE_TIMEOUT,
        SETTING_DEFAULTS,
        VERSION,
        settings,
    )
    from hooks.encryption import EncryptedTextField, seal, unseal
    from hooks.outbox.event import PayloadTooLarge, emit
    from hooks.outbox.subjects import subject_of
    from hooks.scopes import register_namespaces, register_webhook_page
    from hooks.slots import Slot, SlotSetting, register_slot, register_slot_setting
    from hooks.ssrf import UnsafeURL
    from hooks.tools.admin_views import admin_recent_deliveries
    from hooks.tools.configure import (
        SecretChange,
        configure_webhook,
        new_webhook,
        prepare_webhook,
        rotate_secret,
    )
    from hooks.tools.feed import BadCursor, read_feed
    from hooks.tools.forms import (
        WebhookConfigForm,
        validate_payload_filter,
        validate_secret,
        validate_target_url,
    )
    from hooks.tools.metrics import metrics_view, register_metrics
    from hooks.tools.ping import send_test
    from hooks.tools.redelivery import body_expired, redeliver, replay, stop_retrying
    from hooks.tools.search import SearchForm, retry_search, search_page, search_results
    from hooks.tools.shown import (
        DeliveryRow,
        delivery_attempts,
        filter_preview,
        health_state,
        keep_shown_once,
        pace_fields,
        pace_state,
        recent_deliveries,
        secret_shown_once,
        secret_state,
        take_shown_once,
        value_shown_once,
    )
    from hooks.webhook_secrets import generate_secret
    from hooks.worker.alerts import SNOOZE_DAYS, snooze_alerts, snooze_from_form
    from hooks.worker.send_now import send_now, send_to_slot
    from hooks.worker.stopping import cluster_stopping


def _public_modules() -> dict[str, str]:
    """Public name -> the module that defines it, read from the imports above."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    ]
    return {alias.name: imp.module for imp in block.body for alias in imp.names}


# The same names, for `from hooks import *` and `dir(hooks)` (ruff flags an import above
# that is missing here; tests/test_layout.py checks both ways).
__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "EncryptedTextField",
    "NAMESPACE",
    "NAMESPACE_TIMEOUT",
    "PayloadTooLarge",
    "SCOPES",
    "SERVER",
    "SETTING_DEFAULTS",
    "Slot",
    "SlotSetting",
    "USER",
    "UnknownEventType",
    "UnsafeURL",
    "BadCursor",
    "SecretChange",
    "VERSION",
    "WebhookConfigForm",
    "configure_webhook",
    "new_webhook",
    "prepare_webhook",
    "rotate_secret",
    "admin_recent_deliveries",
    "body_expired",
    "cluster_stopping",
    "DeliveryRow",
    "delivery_attempts",
    "emit",
    "event_types",
    "filter_preview",
    "health_state",
    "pace_fields",
    "pace_state",
    "SNOOZE_DAYS",
    "snooze_alerts",
    "snooze_from_form",
    "generate_secret",
    "is_declared_event_type",
    "metrics_view",
    "redeliver",
    "register_event_type",
    "register_metrics",
    "register_namespaces",
    "register_webhook_page",
    "register_slot",
    "register_slot_setting",
    "replay",
    "recent_deliveries",
    "SearchForm",
    "retry_search",
    "search_page",
    "search_results",
    "secret_shown_once",
    "value_shown_once",
    "keep_shown_once",
    "take_shown_once",
    "seal",
    "unseal",
    "secret_state",
    "send_now",
    "send_test",
    "read_feed",
    "send_to_slot",
    "stop_retrying",
    "subject_of",
    "settings",
    "validate_payload_filter",
    "validate_secret",
    "validate_target_url",
]
_MODULES = _public_modules()


def __getattr__(name: str):
    try:
        module = _MODULES[name]
    except KeyError:
        raise AttributeError(f"module 'hooks' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__

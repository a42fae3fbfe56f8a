"""What the hub's Content-Security-Policy (script-src 'self') allows, checked without a
browser: no inline event handler and no inline script in any template or in HTML that
Python code builds; confirmations are `data-confirm` on the form (webhookhub's
confirm.js asks)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE | re.DOTALL)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
SOURCES = [
    *sorted(ROOT.glob("templates/**/*.html")),
    *sorted(ROOT.glob("*/templates/**/*.html")),
    *sorted(p for p in ROOT.glob("*/**/*.py") if ".venv" not in p.parts and "tests" not in p.parts),
]
CONFIRMED = [  # (template, where a form posts): it asks first
    ("templates/admin/hooks/webhook/change_form.html", "hooks_webhook_rotate"),
    ("templates/admin/hooks/delivery/change_form.html", "hooks_delivery_redeliver"),
    ("templates/jobs/detail.html", "job_pages:redeliver"),
    ("templates/jobs/detail.html", "job_pages:stop_retrying"),
    ("templates/namespaces/delivery.html", "namespaces:redeliver"),
    ("templates/namespaces/webhook.html", "namespaces:delete_webhook"),
    ("templates/namespaces/_delete.html", "namespaces:delete_resource"),
    ("templates/namespaces/members.html", "namespaces:remove_member"),
    ("templates/namespaces/index.html", "namespaces:reject"),
    ("templates/accounts/delivery.html", "accounts:redeliver"),
    ("templates/accounts/settings.html", "accounts:revoke_token"),
]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_inline_event_handler_or_inline_script(path: Path):
    text = path.read_text(encoding="utf-8")
    assert not INLINE_HANDLER.search(text), INLINE_HANDLER.search(text)[0]
    assert not INLINE_SCRIPT.search(text), INLINE_SCRIPT.search(text)[0]


@pytest.mark.parametrize("template, action", CONFIRMED)
def test_destructive_and_sending_forms_ask_first(template: str, action: str):
    forms = re.findall(r"<form[^>]*>", (ROOT / template).read_text(), re.DOTALL)
    posting = [f for f in forms if action in f]
    assert posting and all("data-confirm=" in f for f in posting), posting

"""What the browser tests share: Debian's Chromium driven by Playwright (sync API), a
page that collects what a person would see go wrong, and logging in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
OUTPUT = ROOT / "test-output"
PASSWORD = "a long and unusual passphrase"


def require_chromium() -> None:
    """Skip the calling test module without Chromium (CI installs it: there it fails)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs the chromium package")
        pytest.skip(
            f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True
        )


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium (the caller sets DJANGO_ALLOW_ASYNC_UNSAFE: Playwright's sync
    API runs an event loop in the test's thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


def watch(page) -> list[str]:
    """The console errors (CSP violations among them) and page errors `page` will have."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def log_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/settings/")

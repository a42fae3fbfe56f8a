"""A real browser (Playwright driving Debian's Chromium) through signup and the
notification webhook."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
OUTPUT = ROOT / "test-output"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs the chromium package")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser_page(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        try:
            yield page
        finally:
            browser.close()


def test_signup_set_webhook_and_send_a_test_notification(live_server, browser_page, receiver):
    page = browser_page
    page.goto(live_server.url + "/accounts/signup/")
    page.fill("#id_name", "Grace")
    page.fill("#id_email", "grace@example.com")
    page.fill("#id_password", "a long and unusual passphrase")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/settings/")
    assert "Welcome, Grace!" in page.content()

    page.fill("#id_url", receiver.url)
    page.check("#id_signed")
    page.click("#notification-webhook button[type=submit]")
    assert page.locator("#new-secret code").inner_text().startswith("whsec_")

    page.click("#send-test")
    result = page.locator("#test-result")
    result.wait_for()
    assert "Delivered" in result.inner_text() and "HTTP 200" in result.inner_text()
    assert receiver.wait_for(1)
    assert "webhook.test" in page.locator("#deliveries").inner_text()

    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "notification-webhook.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # kept under test-output/ for a person to look at

"""A real browser (Playwright driving Debian's Chromium) through signup and the
notification webhook."""

from __future__ import annotations

import json
import threading

import pytest

import hooks
from tests.browser import OUTPUT, PASSWORD, chromium, log_in, require_chromium, watch

require_chromium()
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser_page(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        errors = watch(page)
        yield page
        assert not errors, errors


def test_signup_set_webhook_and_send_a_test_notification(live_server, browser_page, receiver):
    page = browser_page
    page.goto(live_server.url + "/accounts/signup/")
    page.fill("#id_name", "Grace")
    page.fill("#id_email", "grace@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/settings/")
    assert "Welcome, Grace!" in page.content()

    page.fill("#id_url", receiver.url)
    page.check("input[name=secret_action][value=generate]")
    page.click("#notification-webhook button[type=submit]")
    shown = page.locator("#new-secret code").inner_text()
    assert shown.startswith("whsec_")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#new-secret button[data-copy]")
    assert page.evaluate("navigator.clipboard.readText()") == shown
    page.reload()
    assert page.locator("#new-secret").count() == 0  # shown once
    page.fill("#id_pasted_secret", "my-djinn-secret-0123")
    page.click("#notification-webhook button[type=submit]")
    assert "the replaced one signs beside it until" in page.locator("#secret-state").inner_text()
    assert "my-djinn-secret-0123" not in page.content()

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


NAMESPACE_SHOTS = OUTPUT / "namespaces"


def _shot(page, name: str) -> None:
    NAMESPACE_SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        path = NAMESPACE_SHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5_000
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} at {width} px is {overflow} px too wide"


def test_an_owner_runs_a_namespace_in_a_browser(
    live_server, browser_page, receiver, django_user_model
):
    """Create a namespace, invite a user who accepts, add a webhook, change a variable,
    open the delivery, redeliver; each page is saved under test-output/namespaces/ at
    1400 and 390 px, and none scrolls sideways."""
    from hooks.worker.attempt import deliver_due

    for name in ("olga", "bob"):
        django_user_model.objects.create_user(
            f"{name}@example.com", f"{name}@example.com", PASSWORD,
            name=name.title(),
        )  # fmt: skip
    page, base = browser_page, live_server.url
    log_in(page, base, "olga@example.com")
    page.click("text=Namespaces")
    page.click("text=New namespace")
    page.fill("#id_name", "acme")
    page.fill("#id_description", "Our builds")
    page.click("main button[type=submit]")
    page.wait_for_url("**/namespaces/acme/")
    assert "Namespace acme created." in page.content()
    _shot(page, "1-namespace")

    page.click("nav.tabs >> text=Members")
    page.fill("#id_who", "bob@example.com")
    page.click("#invite button[type=submit]")
    assert "has an account here, they are invited" in page.content()
    _shot(page, "2-members")

    bob = page.context.browser.new_page()
    log_in(bob, base, "bob@example.com")
    bob.goto(base + "/namespaces/")
    _shot(bob, "3-invite")
    bob.click("#invites >> text=Accept")
    bob.wait_for_url("**/namespaces/acme/")
    assert "You joined acme." in bob.content()
    bob.close()

    page.click("nav.tabs >> text=Webhooks")
    page.click("text=Create webhook")
    page.fill("#id_url", receiver.url)
    page.check("#id_all_events")
    page.check("#id_djinn_headers")
    page.click("main form button[type=submit]")
    assert page.locator("#new-secret code").inner_text().startswith("whsec_")
    _shot(page, "4-webhook")

    page.click("nav.tabs >> text=Variables")
    page.fill("#id_key", "REGION")
    page.fill("#id_value", "eu-west-1")
    page.click("#new button[type=submit]")
    page.click("#variables >> text=REGION")
    page.fill("#id_value", "eu-central-1")
    page.click("main form button[type=submit]")
    assert "was saved" in page.content()
    _shot(page, "5-variables")

    deliver_due()
    page.click("nav.tabs >> text=Webhooks")
    _look(page, "namespace-webhooks", "#webhooks tbody td:last-child")
    page.click("#webhooks a")
    assert page.locator("#deliveries").inner_text().count("variables") == 2  # created, updated
    _shot(page, "6-recent-deliveries")
    _look(page, "namespace-webhook", "#deliveries tbody td:last-child")
    page.set_viewport_size({"width": 1400, "height": 900})
    tabs = page.locator("nav.tabs a")
    assert len({round(tabs.nth(i).bounding_box()["y"]) for i in range(tabs.count())}) == 1
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#deliveries tr:has-text('variables') >> nth=0 >> a")
    assert "X-Djinn-CI-Signature" in page.content() and "eu-central-1" in page.content()
    _shot(page, "7-delivery")
    page.once("dialog", lambda dialog: dialog.accept())  # Redeliver asks first
    with page.expect_navigation():
        page.click("#redeliver")
    assert "queued for redelivery" in page.content()
    deliver_due()
    ids = [r.headers["webhook-id"] for r in receiver.requests if b"eu-central-1" in r.body]
    assert len(ids) == 2 and ids[0] == ids[1]  # the same delivery, sent again


WALK_SHOTS = OUTPUT / "walk"


def _look(page, name: str, *in_view: str) -> None:
    """Save the page at 1400 and 390 px; it must not scroll sideways, and each selector
    in `in_view` must be inside the window (not cut off at its right edge)."""
    WALK_SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(WALK_SHOTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} at {width} px is {overflow} px too wide"
        for selector in in_view:
            box = page.locator(selector).first.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (
                name,
                width,
                selector,
                box,
            )


def test_a_walk_through_the_admin_and_the_user_pages(
    live_server, browser_page, receiver, django_user_model
):
    """Issue 17's pages, as people use them, at 1400 and 390 px (test-output/walk/)."""
    from accounts import notification
    from accounts.models import ApiToken
    from hooks import emit
    from hooks.worker.attempt import deliver_due
    from jobs import runner
    from tests.conftest import TEST_EVENT, make_webhook

    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    ann = django_user_model.objects.create_user(
        "ann@example.com", "ann@example.com", PASSWORD, name="Ann"
    )
    server = make_webhook(receiver.url, name="CI receiver")
    emit(TEST_EVENT, {"n": 1})
    notification.save(ann, receiver.url + "/ann", hooks.SecretChange("generate"))
    ApiToken.issue(ann, "a token with a rather long name for a phone")
    _, raw = ApiToken.issue(ann, "ci")
    import json

    from django.test import Client

    job = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post(
        "/v2/echo/run", json.dumps({"input": {"prompt": "hi"}, "webhook": receiver.url + "/callback"}),
        content_type="application/json",
    ).json()["id"]  # fmt: skip
    runner.run(job)
    from hooks.models import Delivery, Webhook

    Webhook.objects.filter(owner=ann).update(event_types=["*"])
    emit("job.finished", {"event": "job_finished", "job": {"id": job, "name": "echo", "status": "COMPLETED", "url": "x"}},
         user=ann, audience=("user",))  # fmt: skip
    deliver_due()
    page, base = browser_page, live_server.url

    page.goto(base + "/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    assert "webhookhub administration" in page.content()
    _look(page, "1-admin-index")
    page.goto(base + "/admin/hooks/webhook/")
    _look(page, "2-webhook-list")
    page.goto(base + "/admin/hooks/webhook/add/")
    assert (
        not page.locator(".field-owner").is_visible()
        and not page.locator(".field-namespace").is_visible()
    )
    page.select_option("#id_scope", "user")
    assert (
        page.locator(".field-owner").is_visible()
        and not page.locator(".field-namespace").is_visible()
    )
    _look(page, "3-webhook-add")
    page.goto(base + f"/admin/hooks/webhook/{server.pk}/change/")
    _look(page, "4-webhook-change")
    page.goto(base + "/admin/hooks/delivery/")
    _look(page, "5-delivery-list")
    delivery = Delivery.objects.filter(webhook=server).first()
    page.goto(base + f"/admin/hooks/delivery/{delivery.pk}/change/")
    _look(page, "6-delivery", "text=Redeliver")
    page.goto(base + "/admin/accounts/siteconfig/")
    assert "As the environment says" in page.content()
    _look(page, "7-account-settings")
    page.goto(base + "/admin/server-configuration/")
    _look(page, "8-server-configuration")

    user = page.context.browser.new_page()
    user.goto(base + "/accounts/login/")
    user.fill("#id_username", "ann@example.com")
    user.fill("#id_password", PASSWORD)
    user.click("main button[type=submit]")
    user.wait_for_url("**/accounts/settings/")
    _look(user, "9-settings", "#tokens-table button.danger", "#deliveries button")
    user.click("#deliveries a")
    assert "HTTP 200" in user.content()
    _look(user, "10-notification-delivery")
    user.goto(base + "/jobs/")
    _look(user, "11-jobs", "#jobs tbody td:last-child")
    user.click("#jobs a")
    assert "Callback" in user.content() and "HTTP 200" in user.content()
    _look(user, "12-job", "#redeliver")
    user.close()


def test_confirmations_ask_and_a_dismissed_one_changes_nothing(
    live_server, browser_page, receiver, django_user_model
):
    """Rotate secret (admin) and Redeliver (a namespace delivery's page) ask first, under
    the hub's own Content-Security-Policy: dismissed, nothing happens; accepted, it does."""
    from hooks import emit
    from hooks.models import Attempt, Webhook
    from hooks.worker.attempt import deliver_due
    from tests.conftest import TEST_EVENT, make_webhook

    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    webhook = make_webhook(receiver.url)
    secret = webhook.secret
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.goto(live_server.url + f"/admin/hooks/webhook/{webhook.pk}/change/")
    asked: list[str] = []

    def answer(accept: bool):
        def handle(dialog):
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.click("text=Rotate secret")
    page.wait_for_timeout(300)  # a dismissed form sends nothing: there is no event to await
    assert len(asked) == 1 and "24 hours" in asked[0]
    assert Webhook.objects.get(pk=webhook.pk).secret == secret
    page.once("dialog", answer(True))
    with page.expect_navigation():
        page.click("text=Rotate secret")
    rotated = Webhook.objects.get(pk=webhook.pk)
    assert rotated.secret != secret and rotated.secret in page.content()  # shown once
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button[data-copy=shown-secret]")
    assert page.evaluate("navigator.clipboard.readText()") == rotated.secret

    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    delivery = rotated.deliveries.get()
    page.goto(live_server.url + f"/admin/hooks/delivery/{delivery.pk}/change/")
    page.once("dialog", answer(False))
    page.click("#redeliver")
    page.wait_for_timeout(300)
    assert len(asked) == 3 and "same webhook-id" in asked[2]
    assert Attempt.objects.filter(delivery=delivery).count() == 1
    page.once("dialog", answer(True))
    with page.expect_navigation():
        page.click("#redeliver")
    deliver_due()
    assert Attempt.objects.filter(delivery=delivery).count() == 2


ADMIN_SHOTS = OUTPUT / "admin"


def test_the_admin_webhook_form_is_compact_and_offers_the_scopes_types(
    live_server, browser_page, receiver, django_user_model
):
    """Scope first, then only its event types in a grid (the add page was 3,800 px tall at
    1400 px); the webhook and delivery lists fit a 1400 px window (test-output/admin/)."""
    from hooks import emit
    from hooks.worker.attempt import deliver_due
    from tests.conftest import TEST_EVENT, make_webhook

    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    make_webhook(receiver.url + "/a/rather/long/path/that/goes/on/and/on/to/the/receiver")
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    page = browser_page
    ADMIN_SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")

    page.goto(live_server.url + "/admin/hooks/webhook/add/")
    page.screenshot(path=str(ADMIN_SHOTS / "webhook-add-1400.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollHeight") < 2200
    visible = lambda value: page.locator(f"#id_event_types input[value='{value}']").is_visible()  # noqa: E731
    assert visible("job.finished") and not visible("build.finished")  # a server webhook
    page.select_option("#id_scope", "namespace")
    assert visible("build.finished") and not visible("job.finished")
    page.screenshot(path=str(ADMIN_SHOTS / "webhook-add-namespace-1400.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ADMIN_SHOTS / "webhook-add-390.png"), full_page=True)

    page.set_viewport_size({"width": 1400, "height": 900})
    for name, path in (
        ("webhooks", "/admin/hooks/webhook/"),
        ("deliveries", "/admin/hooks/delivery/"),
    ):
        page.goto(live_server.url + path)
        page.screenshot(path=str(ADMIN_SHOTS / f"{name}-1400.png"), full_page=True)
        table = page.locator("#result_list").bounding_box()
        content = page.locator("#changelist").bounding_box()
        assert table["x"] + table["width"] <= content["x"] + content["width"] + 1, name


def test_a_job_ending_while_a_page_is_open_notifies_nobody_and_after_it_closed_at_once(
    live_server, receiver, django_user_model, monkeypatch
):
    """Open WebUI's rule: a user with a page open is active and gets no notification;
    once the page is closed (its goodbye beacon) the next job's end notifies at once,
    with the result (no waiting for an idle time to pass)."""
    from accounts import notification, presence
    from hooks.worker.attempt import deliver_due
    from jobs import lifecycle, runner
    from jobs.models import Endpoint, Job

    ann = django_user_model.objects.create_user("ann@example.com", "ann@example.com", PASSWORD)
    notification.save(ann, receiver.url, hooks.SecretChange("remove"), shape="open_webui")

    def job_ends() -> str:
        job = lifecycle.submit(Job(endpoint=Endpoint.objects.get(name="echo"), user=ann,
                                   input={"prompt": "a red fox"}))  # fmt: skip
        assert runner.run(job.id) == "COMPLETED"
        deliver_due()
        return job.id

    def is_beat(state: str):
        return lambda request: (
            request.url.endswith("/accounts/presence/")
            and (f'name="state"\r\n\r\n{state}' in (request.post_data or ""))
        )

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop
    with chromium() as browser:
        context = browser.new_context()  # outlives the page it closes
        page = context.new_page()
        errors = watch(page)
        with page.expect_request(is_beat("open")) as beat:
            log_in(page, live_server.url, "ann@example.com")
        assert beat.value.response().status == 204 and presence.is_present(ann)
        job_ends()
        assert receiver.requests == []  # present: not notified

        said_goodbye = threading.Event()  # set once the server has handled the goodbye
        gone = presence.gone
        monkeypatch.setattr(presence, "gone", lambda *a: (gone(*a), said_goodbye.set()))
        page.close()  # pagehide: the goodbye beacon
        assert said_goodbye.wait(10) and not presence.is_present(ann)
        assert not errors, errors
    job_id = job_ends()
    assert receiver.wait_for(1)
    assert json.loads(receiver.requests[0].body) == {
        "action": "chat",
        "message": '{"prompt": "a red fox"}',
        "title": "echo",
        "url": f"http://localhost:8000/jobs/{job_id}/",
    }

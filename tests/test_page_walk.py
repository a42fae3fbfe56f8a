"""The page walk (issue 36): every page of the admin, the user pages, the job and
namespace pages and the API docs, looked at as a person sees them, at 1400 and 390 px.

One world is built the way people build it: signup and the settings page, the namespace
pages, the admin's add forms, the job and event APIs, jobs calling back to a real local
receiver. Then every page is visited, and each step fails on:

- a console error, a page error or a CSP violation, or a response >= 400 (the page's or
  an asset's) that the step did not expect;
- sideways scrolling, a table or its last cell cut off, a button outside the window; on
  a phone a hub table of three columns or more must be cards (`stack`, `data-label`s),
  not a table scrolling inside `.table-wrap`;
- `None`, a Python repr or a template tag in the text, JSON shown that does not parse;
- a secret or token the walk made anywhere but in its one-time display.

Every edit form is also submitted unchanged (and the page it leads to looked at), every
`data-confirm` form is clicked once dismissed (nothing changes) and once accepted (it
happens), and the walk fails on a page of the URL confs or the admin it did not visit.
The screenshots are under test-output/walk/ for a person to look at."""

from __future__ import annotations

import json
import os
import re
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.test import Client, RequestFactory
from django.urls import Resolver404, resolve, reverse

from tests.browser import OUTPUT, PASSWORD, chromium, require_chromium, watch

require_chromium()
pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = OUTPUT / "walk"
# WALK_SCREENSHOTS=0 checks every page without saving it (CI's second pass, on
# PostgreSQL: the pages are the same, and the PNGs are half the walk's time).
SCREENSHOTS = os.environ.get("WALK_SCREENSHOTS", "1") != "0"
# WALK_WIDTHS=1400 checks the layout at one width (CI's second pass: the templates and
# their layout do not depend on the database; the first pass checked both widths).
WIDTHS = tuple(int(w) for w in os.environ.get("WALK_WIDTHS", "1400,390").split(","))
PHONE = 600  # below this a hub table is a list of cards

# Fails the step on a CSP violation even where Chromium would not log one.
CSP_WATCH = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`));"""

# What is out of the window at this width: the page's sideways overflow, tables and
# their last cells, buttons; on a phone, hub tables that are not cards.
LOOK = """({hub, phone}) => {
  const width = window.innerWidth, cut = [], unstacked = [], ids = {};
  const shown = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const out = (el) => { const r = el.getBoundingClientRect(); return r.left < -1 || r.right > width + 1; };
  const name = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} ` +
    JSON.stringify((el.innerText || el.value || "").trim().slice(0, 40));
  for (const table of document.querySelectorAll("table")) {
    if (!shown(table)) continue;
    if (out(table)) cut.push("table " + name(table));
    for (const row of table.rows) {
      const last = row.cells[row.cells.length - 1];
      if (last && shown(last) && out(last)) { cut.push("last cell of " + name(table)); break; }
    }
    const columns = Math.max(0, ...Array.from(table.rows, (r) => r.cells.length));
    if (!hub || width >= phone || columns < 3) continue;
    if (!table.classList.contains("stack")) { unstacked.push(name(table)); continue; }
    for (const cell of table.querySelectorAll("td:not([data-label])")) {
      if (cell.innerText.trim() && !cell.querySelector("form, button")) {
        unstacked.push(`${name(table)}: a cell without data-label ${name(cell)}`); break;
      }
    }
  }
  const buttons = "button, input[type=submit], input[type=button], a.button, .object-tools a";
  for (const b of document.querySelectorAll(buttons)) if (shown(b) && out(b)) cut.push("button " + name(b));
  for (const el of document.querySelectorAll("[id]")) ids[el.id] = (ids[el.id] || 0) + 1;
  return {overflow: document.documentElement.scrollWidth - width, cut, unstacked,
          twice: Object.keys(ids).filter((id) => ids[id] > 1)};
}"""

LOAD_FAILED = re.compile(r"Failed to load resource: the server responded with a status of \d+")
# django-q2's own admin shows a task's arguments, result and group as the Python values
# they are (reprs, None): the workers' internals, left as they are.
PYTHON_VALUES = "/admin/django_q/"
TEXT_FAULTS = {
    "None": re.compile(r"\bNone\b(?! available)"),  # the admin's "Recent actions: None available"
    "a Python repr": re.compile(r"\{'|\['|<QuerySet|object at 0x"),
    "a template tag": re.compile(r"\{\{|\{%"),
    "a space before a full stop or comma": re.compile(r"\w [.,](?=\s|$)"),
}


class Walk:
    """The people of the walk, what they must not see, and what they saw."""

    def __init__(self, browser, base: str, receiver):
        self.browser, self.base, self.receiver = browser, base, receiver
        self.secrets: dict[str, str] = {}  # what it made and saw once: label -> value
        self.seen: set[str] = set()  # the URL names of the pages looked at
        self.posted: set[str] = set()  # the URL names the browser posted forms to
        self.confirms: dict[tuple, tuple] = {}  # (page, action, kind) -> (person, path, action)
        self.shots = 0

    def person(self, name: str) -> Person:
        return Person(self, name)

    def keep_secret(self, label: str, value: str) -> None:
        assert value and len(value) >= 12 and value not in self.secrets.values(), (label, value)
        self.secrets[label] = value


class Person:
    """One person's browser: each step does something, then looks at where it led."""

    def __init__(self, walk: Walk, name: str):
        self.walk, self.name = walk, name
        context = walk.browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
        context.set_default_timeout(10_000)
        self.page = page = context.new_page()
        page.add_init_script(CSP_WATCH)
        self.problems = watch(page)
        self.failed: list[tuple[int, str]] = []
        page.on("response", lambda r: self.failed.append((r.status, r.url)) if r.status >= 400 else None)  # fmt: skip
        page.on("request", lambda r: walk.posted.add(_view_name(r.url)) if r.method == "POST" else None)  # fmt: skip

    @property
    def path(self) -> str:
        parts = urlsplit(self.page.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def step(self, name: str, action, *, expect=(), reveals=None) -> None:
        """Do `action`, then look at the page it led to. `expect`: the statuses >= 400 it
        may answer; `reveals`: the secrets it shows once, by label, with the selector of
        their one-time display (kept: no other page may show them)."""
        self.problems.clear()
        self.failed.clear()
        action()
        self.page.wait_for_load_state()
        for label, selector in (reveals or {}).items():
            self.walk.keep_secret(label, self.page.inner_text(selector).strip())
        self.look(name, shows=set(reveals or ()), confirms=not expect)
        # Chromium logs each answer >= 400 too: those are judged by `expect` below.
        problems = [p for p in self.problems if not LOAD_FAILED.match(p)]
        assert not problems, (name, problems)
        unexpected = [(status, url) for status, url in self.failed if status not in expect]
        assert not unexpected, (name, unexpected)

    def go(self, path: str, name: str, *, settle: bool = False, **kwargs) -> None:
        """Open `path`; `settle`: wait until its scripts have fetched what they fetch."""
        wait = "networkidle" if settle else "load"
        self.step(name, lambda: self.page.goto(self.walk.base + path, wait_until=wait), **kwargs)

    def submit(self, name: str, selector: str, **kwargs) -> None:
        def click():
            with self.page.expect_navigation():
                self.page.click(selector)

        self.step(name, click, **kwargs)

    def look(self, name: str, shows=(), confirms: bool = True) -> None:
        """Save the page at both widths and check it; `confirms`: note its data-confirm
        forms, to be clicked at the end (not on a page re-rendered with errors)."""
        page, path = self.page, urlsplit(self.page.url).path
        hub = not path.startswith("/admin/")
        SHOTS.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            if SCREENSHOTS:
                page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
                self.walk.shots += 1
            seen = page.evaluate(LOOK, {"hub": hub, "phone": PHONE})
            assert seen["overflow"] <= 1, f"{name} at {width} px is {seen['overflow']} px too wide"
            assert not seen["cut"], (name, width, "outside the window", seen["cut"])
            assert not seen["unstacked"], (name, width, "not cards on a phone", seen["unstacked"])
            if hub:
                assert not seen["twice"], (name, "ids used twice", seen["twice"])
        text = page.inner_text("body")
        for fault, pattern in TEXT_FAULTS.items():
            if fault in ("None", "a Python repr") and path.startswith(PYTHON_VALUES):
                continue
            found = pattern.search(text)
            assert not found, (name, fault, text[max(found.start() - 80, 0) : found.end() + 80])
        for block in page.eval_on_selector_all(
            "pre, code", "els => els.filter((e) => e.getClientRects().length).map((e) => e.innerText.trim())"
        ):  # fmt: skip
            if block[:1] in ("{", "[") and not block.endswith("…"):  # "…": cut on purpose
                try:
                    json.loads(block)
                except ValueError:
                    pytest.fail(f"{name}: shown as JSON but not JSON: {block[:300]}")
        html = page.content()
        for label, secret in self.walk.secrets.items():
            if label in shows:
                assert secret in html, (name, f"the {label} is not shown")
            else:
                assert secret not in html, (name, f"the {label} is shown again")
        match = resolve(path)
        self.walk.seen.add(match.view_name)
        if not confirms:
            return
        for action, question in page.eval_on_selector_all(
            "form[data-confirm]", "fs => fs.map((f) => [f.getAttribute('action'), f.dataset.confirm])"
        ):  # fmt: skip
            assert question.strip(), (name, action, "asks nothing")
            target = resolve(urlsplit(action).path)
            key = (match.view_name, target.view_name, target.kwargs.get("kind", ""))
            self.walk.confirms.setdefault(key, (self, self.path, action))


def _view_name(url: str) -> str:
    try:
        return resolve(urlsplit(url).path).view_name
    except Resolver404:
        return url


# --- the world, built as people build it ----------------------------------------------
def _sign_up(person: Person, name: str, email: str) -> None:
    page = person.page
    person.go("/accounts/signup/", f"{person.name}-signup")
    page.fill("#id_name", name)
    page.fill("#id_email", email)
    page.fill("#id_password", "short")
    person.submit(f"{person.name}-signup-refused", "main button[type=submit]", expect=[400])
    page.fill("#id_password", PASSWORD)
    person.submit(f"{person.name}-welcome", "main button[type=submit]")
    assert f"Welcome, {name}!" in page.content()


def _lock_out(walk: Walk) -> None:
    """Someone guessing a password: the refusals, then the lockout page (django-axes)."""
    mallory = walk.person("mallory")
    page = mallory.page
    mallory.go("/accounts/login/", "login")
    for attempt in range(1, 6):
        page.fill("#id_username", "mallory@example.com")
        page.fill("#id_password", f"guess {attempt}")
        if attempt in (1, 5):
            mallory.submit(f"login-refused-{attempt}", "main button[type=submit]",
                           expect=[403, 429])  # fmt: skip
        else:
            with page.expect_navigation():
                page.click("main button[type=submit]")
    assert "Too many failed logins" in page.inner_text("main")


def _settings(walk: Walk, ann: Person) -> None:
    """Ann's API tokens and notification webhook, each secret shown once, a test event."""
    page = ann.page
    page.fill("#tokens input[name=name]", "ci runner")
    ann.submit("settings-new-token", "#tokens button >> text=Create token",
               reveals={"API token": "#new-token-value"})  # fmt: skip
    ann.step("settings-new-token-reloaded", page.reload)
    page.fill("#tokens input[name=name]", "ci runner")
    ann.submit("settings-token-refused", "#tokens button >> text=Create token", expect=[400])
    page.fill("#tokens input[name=name]", "a token with a rather long name for a phone")
    ann.submit("settings-second-token", "#tokens button >> text=Create token",
               reveals={"second API token": "#new-token-value"})  # fmt: skip
    page.fill("#notification-webhook input[name=url]", walk.receiver.url + "/ann")
    page.check("#notification-webhook input[name=secret_action][value=generate]")
    ann.submit("settings-notification-webhook", "#notification-webhook button[type=submit]",
               reveals={"notification webhook secret": "#new-secret-value"})  # fmt: skip
    ann.step("settings-notification-webhook-reloaded", page.reload)
    ann.submit("settings-test-event", "#send-test")
    assert "Delivered" in page.inner_text("#test-result")
    ann.submit("settings-alerts-snoozed", "#snooze-alerts button[type=submit]")
    assert "snoozed until" in page.inner_text("#health-state")


def _namespaces(walk: Walk, ann: Person, bob: Person) -> None:
    """acme with a sub-namespace, a member, one of each resource and a webhook; lab, whose
    invite Bob has yet to answer."""
    page = ann.page
    ann.go("/namespaces/", "namespaces-none")
    for name, parent in (("acme", ""), ("builds", "acme"), ("lab", "")):
        ann.go("/namespaces/new/" + (f"?parent={parent}" if parent else ""),
               f"namespace-new-{name}")  # fmt: skip
        page.fill("#id_name", name)
        page.fill("#id_description", f"The {name} team's builds")
        ann.submit(f"namespace-{name}", "main button[type=submit]")
    for name in ("acme", "lab"):
        ann.go(f"/namespaces/{name}/members/", f"namespace-{name}-members-before")
        page.fill("#id_who", "bob@example.com")
        ann.submit(f"namespace-{name}-invited", "#invite button[type=submit]")
    bob.go("/namespaces/", "bob-namespaces-invites")
    bob.submit("bob-joined-acme", "#invites tr:has-text('acme') >> text=Accept")

    def add(kind: str, fields: dict, *, masked: bool = False, file: tuple = ()) -> None:
        for selector, value in fields.items():
            page.fill(f"#new {selector}", value)
        if masked:
            page.check("#new #id_masked")
        if file:
            page.set_input_files("#new #id_file", files=[{"name": file[0], "mimeType": file[1],
                                                          "buffer": file[2]}])  # fmt: skip
        ann.submit(f"namespace-{kind}-added", "#new button[type=submit]")

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    walk.keep_secret("masked variable", "masked-value-never-shown-7f3a")
    ann.go("/namespaces/acme/variables/", "namespace-variables-none")
    add("variable", {"#id_key": "REGION", "#id_value": "eu-west-1"})
    add("masked-variable", {"#id_key": "DEPLOY_TOKEN", "#id_value": walk.secrets["masked variable"]},
        masked=True)  # fmt: skip
    ann.go("/namespaces/acme/keys/", "namespace-keys-none")
    add("key", {"#id_name": "deploy", "#id_public_key": public.decode() + " deploy@ci"})
    ann.go("/namespaces/acme/cron/", "namespace-cron-none")
    add("cron", {"#id_name": "nightly", "#id_input": '{"prompt": "nightly build"}'})
    ann.go("/namespaces/acme/images/", "namespace-images-none")
    add("image", {"#id_name": "debian-12.qcow2"}, file=("debian.qcow2", "application/octet-stream", b"QFI\xfb" * 300))  # fmt: skip
    ann.go("/namespaces/acme/objects/", "namespace-objects-none")
    add("object", {"#id_name": "cache.tar.gz"}, file=("cache.tar.gz", "application/gzip", b"\x1f\x8b" * 600))  # fmt: skip

    ann.go("/namespaces/acme/webhooks/", "namespace-webhooks-none")
    ann.step("namespace-webhook-new", lambda: page.click("main >> text=Create webhook"))
    page.fill("#id_url", "not a URL")
    ann.submit("namespace-webhook-refused", "main form button[type=submit]", expect=[400])
    page.fill("#id_url", walk.receiver.url + "/acme/builds/notifications-from-the-hub/1f8b2c")
    page.check("#id_all_events")
    page.check("#id_djinn_headers")
    ann.submit("namespace-webhook-created", "main form button[type=submit]",
               reveals={"namespace webhook secret": "#new-secret-value"})  # fmt: skip
    ann.submit("namespace-webhook-test-event", "#send-test")
    assert "Delivered" in page.inner_text("#test-result")
    ann.submit("namespace-webhook-alerts-snoozed", "#snooze-alerts button[type=submit]")
    assert "snoozed until" in page.inner_text("#health-state")


def _admin_world(walk: Walk, root: Person) -> None:
    """What staff set up in the admin: a declared event type, a server webhook, a route
    event and its route webhook; a token may post events."""
    from accounts.models import ApiToken

    page = root.page
    root.go("/admin/login/", "admin-login")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    root.submit("admin-index", "input[type=submit]")

    root.go("/admin/hooks/declaredeventtype/add/", "admin-hooks-declaredeventtype-add")
    page.fill("#id_name", "invoice.paid")
    page.fill("#id_description", "An invoice was paid.")
    page.fill("#id_example", '{"invoice": "in_1842", "amount": 1200}')
    page.check("#id_for_users")
    root.submit("admin-declared-event-type-saved", "input[name=_save]")

    root.go("/admin/hooks/webhook/add/", "admin-hooks-webhook-add")
    page.fill("#id_name", "CI receiver")
    page.fill("#id_url", walk.receiver.url + "/server")
    for event_type in ("invoice.paid", "job.finished", "user.signup"):
        page.check(f"#id_event_types input[value='{event_type}']")
    root.submit("admin-server-webhook-saved", "input[name=_save]",
                reveals={"server webhook secret": "#shown-secret"})  # fmt: skip

    root.go("/admin/routes/routeevent/add/", "admin-routes-routeevent-add")
    page.fill("#id_label", "job submitted")
    page.select_option("#id_method", "POST")
    page.fill("#id_pattern", "^/v2/echo/run$")
    root.submit("admin-route-event-saved", "input[name=_save]")
    root.go("/admin/routes/routewebhook/add/", "admin-routes-routewebhook-add")
    page.fill("#id_name", "APIO audit")
    page.fill("#id_url", walk.receiver.url + "/route")
    page.check("#id_events input >> nth=0")
    root.submit("admin-route-webhook-saved", "input[name=_save]",
                reveals={"route webhook secret": "#shown-secret"})  # fmt: skip

    token = ApiToken.objects.get(name="ci runner")
    root.go(f"/admin/accounts/apitoken/{token.pk}/change/", "admin-token-before")
    page.check("#id_can_post_events")
    root.submit("admin-token-may-post-events", "input[name=_save]")


def _api_calls(walk: Walk) -> list[str]:
    """Ann through the APIs with her token: a webhook with a payload filter (to a receiver
    path that fails, disabled in the end), jobs (one with a callback, two in acme), an
    event of the declared type. Every delivery due is sent."""
    from hooks.models import Webhook
    from hooks.worker import health
    from hooks.worker.attempt import deliver_due
    from jobs import runner

    api = Client(HTTP_AUTHORIZATION=f"Bearer {walk.secrets['API token']}")

    def post(path: str, body: dict, status: int, **headers) -> dict:
        answer = api.post(path, json.dumps(body), content_type="application/json", **headers)
        assert answer.status_code == status, (path, answer.status_code, answer.content)
        return answer.json()

    made = post("/api/v1/webhooks", {"namespace": "acme", "url": walk.receiver.url + "/flaky",
                                     "events": ["*"], "name": "filtered",
                                     "payload_filter": {"path": "status", "eq": "passed"}}, 201)  # fmt: skip
    walk.keep_secret("API-made webhook secret", made["secret"])
    jobs = [
        post("/v2/echo/run", {"input": {"prompt": "hi"}, "webhook": walk.receiver.url + "/callback"}, 200)["id"],
        post("/v2/echo/run", {"input": {"prompt": "build"}, "namespace": "acme"}, 200)["id"],
        # Its callback's receiver is down: the callback waits for a retry (Send now, Stop).
        post("/v2/echo/run", {"input": {"prompt": "late"}, "webhook": walk.receiver.url + "/down"}, 200)["id"],
    ]  # fmt: skip
    for job in jobs:
        runner.run(job)
    post("/api/v1/events", {"type": "invoice.paid", "payload": {"invoice": "in_1842", "amount": 1200},
                            "user": "ann@example.com"}, 202, HTTP_IDEMPOTENCY_KEY="in_1842-paid")  # fmt: skip
    while deliver_due():
        pass
    # Its receiver keeps failing: the workers disable it after days; the next event that
    # passes its filter is kept as skipped, for the admin's Replay.
    flaky = Webhook.objects.get(pk=made["id"])
    health.disable(flaky, "Every attempt has failed since yesterday (the walk says so).")
    jobs.append(
        post("/v2/echo/run", {"input": {"prompt": "again"}, "namespace": "acme"}, 200)["id"]
    )
    runner.run(jobs[-1])
    while deliver_due():
        pass
    assert flaky.deliveries.filter(status="skipped").exists()
    return jobs


def _other_rows() -> None:
    """Rows no page makes, so that every admin list has a change page to open: a group,
    a task that succeeded and one that failed (the workers write these), and a remote
    worker with its key (a worker's takes and pings make them)."""
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from django_q.models import Task

    from jobs.models import Endpoint, RemoteWorker, WorkerKey

    Group.objects.create(name="operators")
    now = timezone.now()
    key, _ = WorkerKey.issue("gpu box", Endpoint.objects.get(name="echo"))
    RemoteWorker.objects.create(key=key, pod_id="pod-1", seen_at=now)
    for ok in (True, False):
        Task.objects.create(id=f"task-{ok}", name=f"walk-{ok}", func="hooks.worker.tasks.deliver",
                            started=now, stopped=now, success=ok, result="done" if ok else "Boom",
                            args=(), kwargs={})  # fmt: skip


# --- the pages -------------------------------------------------------------------------
def _user_pages(walk: Walk, ann: Person, bob: Person, jobs: list[str]) -> None:
    """Every page of the accounts, jobs and namespaces URL confs, and the API docs."""
    from hooks.models import Webhook
    from namespaces.views import KINDS

    ann.go("/accounts/settings/", "settings")
    ann.step("settings-delivery", lambda: ann.page.click("#deliveries a >> nth=0"))
    ann.go("/accounts/password/", "password-change")
    ann.go("/jobs/", "jobs")
    for number, job in enumerate(jobs, 1):
        ann.go(f"/jobs/{job}/", f"job-{number}")
    ann.go("/namespaces/", "namespaces")
    for tab in ("", "edit/", "members/", "jobs/", f"jobs/{jobs[1]}/", "webhooks/", "webhooks/new/"):
        ann.go(f"/namespaces/acme/{tab}", "namespace-acme-" + (tab.split("/")[0] or "overview"))
    ann.go("/namespaces/acme/builds/", "namespace-acme-builds")
    for slug, kind in KINDS.items():
        ann.go(f"/namespaces/acme/{slug}/", f"namespace-{slug}")
        for item in kind.model.objects.order_by("pk"):
            ann.go(f"/namespaces/acme/{slug}/{item.pk}/", f"namespace-{slug}-{item.pk}")
            if slug in ("images", "objects"):
                download = ann.page.request.get(f"{walk.base}/namespaces/acme/{slug}/{item.pk}/download/")  # fmt: skip
                assert download.status == 200 and len(download.body()) == item.size, slug
                walk.seen.add("namespaces:download")
    for hook in Webhook.objects.filter(scope="namespace").order_by("pk"):
        ann.go(f"/namespaces/acme/webhooks/{hook.pk}/", f"namespace-webhook-{hook.pk}")
        ann.step(f"namespace-webhook-{hook.pk}-delivery",
                 lambda: ann.page.click("#deliveries a >> nth=0"))  # fmt: skip
    bob.go("/namespaces/", "bob-namespaces")
    bob.go("/namespaces/acme/", "bob-namespace-acme")
    bob.go("/namespaces/acme/members/", "bob-namespace-acme-members")
    bob.go("/jobs/", "bob-jobs-none")
    ann.go("/api/v1/docs", "api-docs", settle=True)


def _admin_pages(walk: Walk, root: Person) -> None:
    """The admin's index, every model's list, add page and a change page (every webhook's),
    each edit form saved unchanged."""
    from accounts.models import User
    from hooks.models import Webhook

    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(username="root")
    root.go("/admin/", "admin-index")
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        name = "admin-" + info.replace("_", "-", 1)
        root.go(reverse(f"admin:{info}_changelist"), f"{name}-list")
        if model_admin.has_add_permission(request):
            root.go(reverse(f"admin:{info}_add"), f"{name}-add")
        rows = model_admin.get_queryset(request).order_by("pk")
        objects = list(rows) if model is Webhook else list(rows[:1])
        assert objects, f"the walk made no {model._meta.verbose_name}: no change page to see"
        for number, obj in enumerate(objects, 1):
            page = f"{name}-change" + (f"-{number}" if len(objects) > 1 else "")
            root.go(reverse(f"admin:{info}_change", args=[quote(obj.pk)]), page)
            if root.page.locator("input[name=_save]").count():
                _saved_unchanged(walk, root, f"{page}-saved", "input[name=_save]")


def _kept() -> dict:
    """What saving a form unchanged must leave as it was: secrets, masked values."""
    from hooks.models import Webhook
    from namespaces.models import Variable

    return {"secrets": dict(Webhook.objects.values_list("pk", "secret")),
            "variables": dict(Variable.objects.values_list("pk", "value"))}  # fmt: skip


def _saved_unchanged(walk: Walk, person: Person, name: str, button: str) -> None:
    """An edit form sent as it came: it saves, says so, and changes no secret."""
    kept = _kept()
    person.submit(name, button)
    page = person.page
    assert not page.locator(".errornote, .errorlist, .result.bad, .messages .error").count(), name
    assert page.locator(".messagelist li:not(.error), .messages li:not(.error)").count(), name
    assert _kept() == kept, name
    assert "shown this once" not in page.content() and not page.locator("#new-secret").count()


def _hub_edits(walk: Walk, ann: Person) -> None:
    """Every edit form of the user and namespace pages, sent unchanged."""
    from hooks.models import Webhook
    from namespaces.views import KINDS

    forms = [("/accounts/settings/", "profile", "#profile button[type=submit]"),
             ("/accounts/settings/", "notification-webhook",
              "#notification-webhook button >> text=Save webhook"),
             ("/namespaces/acme/edit/", "namespace-settings", "main form button >> text=Save")]  # fmt: skip
    for slug, kind in KINDS.items():
        for item in kind.model.objects.order_by("pk"):
            path = f"/namespaces/acme/{slug}/{item.pk}/"
            forms.append((path, f"namespace-{slug}-{item.pk}", "main form button[type=submit]"))
    for hook in Webhook.objects.filter(scope="namespace").order_by("pk"):
        path = f"/namespaces/acme/webhooks/{hook.pk}/"
        forms.append((path, f"namespace-webhook-{hook.pk}", "main button >> text=Save webhook"))
    for path, name, button in forms:
        ann.page.goto(walk.base + path)
        _saved_unchanged(walk, ann, f"{name}-saved", button)


def _admin_tools(walk: Walk, root: Person) -> None:
    """The hub's own admin pages: the dashboard, server configuration (saved unchanged),
    Send test event, a disabled webhook re-enabled and replayed, the Redeliver action's
    confirmation answered no, then yes."""
    from hooks.models import Webhook
    from routes.models import RouteWebhook

    root.go("/admin/dashboard/", "admin-dashboard")
    root.go("/admin/dashboard/?period=7d", "admin-dashboard-7d")
    root.go("/admin/server-configuration/", "admin-server-configuration")
    _saved_unchanged(walk, root, "admin-server-configuration-saved", "#server-configuration input[type=submit]")  # fmt: skip

    server = Webhook.objects.get(name="CI receiver")
    root.go(f"/admin/hooks/webhook/{server.pk}/change/", "admin-server-webhook")
    root.submit("admin-server-webhook-test-event", "#send-test")
    root.submit("admin-server-webhook-alerts-snoozed", "#snooze-alerts button[type=submit]")
    route = RouteWebhook.objects.get()
    root.go(f"/admin/routes/routewebhook/{route.pk}/change/", "admin-route-webhook")
    root.submit("admin-route-webhook-test-event", "#send-test")

    flaky = Webhook.objects.get(disabled_at__isnull=False)
    root.go(f"/admin/hooks/webhook/{flaky.pk}/change/", "admin-disabled-webhook")
    root.submit("admin-replay-since-disabled", "button >> text=Re-enable")
    root.submit("admin-replay-count", "input[name=preview]")
    assert "1 delivery match" in root.page.inner_text("#replay-count")
    root.submit("admin-replayed", "input[name=confirm]")
    assert flaky.deliveries.filter(status="skipped").count() == 0

    def ask_to_redeliver() -> str:
        root.page.goto(walk.base + "/admin/hooks/delivery/?status__exact=succeeded")
        first = "#result_list input.action-select >> nth=0"
        root.page.check(first)
        root.page.select_option("select[name=action]", "redeliver")
        chosen = root.page.get_attribute(first, "value")
        root.submit("admin-redeliver-confirmation", "button[name=index]")
        return chosen

    ask_to_redeliver()
    before = _state()
    root.submit("admin-redeliver-declined", "text=No, go back")
    assert _state() == before
    chosen = ask_to_redeliver()
    sent_again = _effect("admin:hooks_delivery_redeliver", {"pk": chosen})
    root.submit("admin-redelivered", "input[value^=Yes]")
    sent_again()


def _searches(walk: Walk, ann: Person, root: Person) -> None:
    """The history's searches (a filter set, a refused one) and "send every matching
    delivery again" on each surface: the count first, confirmed, then sent (the same
    webhook-ids)."""
    from hooks.models import Attempt, Webhook
    from hooks.worker.attempt import deliver_due

    hook = Webhook.objects.filter(scope="namespace").order_by("pk").first()
    pages = [
        (ann, "settings-deliveries", "/accounts/notification/deliveries/"),
        (ann, "job-callbacks", "/jobs/callbacks/"),
        (ann, "namespace-webhook-deliveries", f"/namespaces/acme/webhooks/{hook.pk}/deliveries/"),
        (root, "admin-delivery-search", "/admin/hooks/delivery/search/"),
    ]  # fmt: skip
    for person, name, path in pages:
        person.go(path, name)
        person.go(path + "?status=succeeded&since=2000-01-01", f"{name}-filtered")
        person.go(path + "?response_status=abc&q=nope", f"{name}-refused", expect=(400,))
        person.go(path + "retry/?status=succeeded", f"{name}-retry")
        count = int(person.page.inner_text("#retry-count strong"))
        # By hand: other deliveries the walk made may be due as well; and some it finds
        # may not go (their webhook turned off since): tests/test_search.py counts them.
        by_hand = Attempt.objects.filter(trigger=Attempt.Trigger.MANUAL)
        attempts = by_hand.count()
        person.submit(f"{name}-retried", "#retry-confirm")
        assert f"{count} " in person.page.inner_text(".messages, .messagelist"), name
        deliver_due()
        assert attempts < by_hand.count() <= attempts + count, name


# --- confirmations ---------------------------------------------------------------------
ORDER = {  # what goes first: a delivery's page goes with its webhook, a token with its use
    "accounts:redeliver": 0, "job_pages:redeliver": 0, "namespaces:redeliver": 0,
    "job_pages:stop_retrying": 1,
    "admin:hooks_delivery_redeliver": 0, "admin:hooks_webhook_rotate": 0,
    "namespaces:delete_resource": 1, "namespaces:remove_member": 2, "namespaces:reject": 2,
    "namespaces:delete_webhook": 3, "accounts:revoke_token": 4,
}  # fmt: skip


def _state() -> dict:
    """What a confirmation changes: which rows there are, deliveries' states, secrets."""
    from django.apps import apps

    from hooks.models import Delivery

    # Left out: sessions, login failures, and the open pages' presence beats (each page
    # the walk opens beats on its own: accounts.Presence).
    rows = {model._meta.label: list(model._base_manager.order_by("pk").values_list("pk", flat=True))
            for model in apps.get_models() if model._meta.app_label not in ("sessions", "axes")
            and model._meta.label != "accounts.Presence"}  # fmt: skip
    deliveries = list(
        Delivery.objects.order_by("pk").values_list("pk", "status", "next_attempt_at")
    )
    return {"rows": rows, "deliveries": deliveries, **_kept()}


def _effect(view: str, kwargs: dict):
    """A check that the confirmation accepted did what it says."""
    from accounts.models import ApiToken
    from hooks.models import Attempt, Delivery, Webhook
    from hooks.worker.attempt import deliver_due
    from namespaces.models import Collaborator, Invite
    from namespaces.views import KINDS

    if view.endswith(":redeliver") or view == "admin:hooks_delivery_redeliver":
        pk = kwargs.get("delivery_id") or kwargs["pk"]
        attempts = Attempt.objects.filter(delivery=pk).count()

        def sent_again() -> None:
            assert Delivery.objects.get(pk=pk).status == "pending", view
            deliver_due()
            assert Attempt.objects.filter(delivery=pk).count() == attempts + 1, view

        return sent_again
    if view == "job_pages:stop_retrying":
        pk = kwargs["delivery_id"]
        assert Delivery.objects.get(pk=pk).status == "pending", view

        def stopped() -> None:
            delivery = Delivery.objects.get(pk=pk)
            assert delivery.status == "failed" and delivery.next_attempt_at is None, view

        return stopped
    if view == "admin:hooks_webhook_rotate":
        secret = Webhook.objects.get(pk=kwargs["pk"]).secret

        def rotated() -> None:
            assert Webhook.objects.get(pk=kwargs["pk"]).secret != secret, view

        return rotated
    gone = {
        "accounts:revoke_token": lambda: ApiToken.objects.filter(pk=kwargs["pk"]),
        "namespaces:delete_resource": lambda: KINDS[kwargs["kind"]].model.objects.filter(pk=kwargs["pk"]),
        "namespaces:reject": lambda: Invite.objects.filter(pk=kwargs["pk"]),
        "namespaces:remove_member": lambda: Collaborator.objects.filter(user=kwargs["user_id"]),
        "namespaces:delete_webhook": lambda: Webhook.objects.filter(pk=kwargs["pk"]),
    }  # fmt: skip
    if view not in gone:
        pytest.fail(f"a data-confirm form the walk does not know how to check: {view}")
    assert gone[view]().exists(), view

    def deleted() -> None:
        assert not gone[view]().exists(), (view, "still there")

    return deleted


def _answer(asked: list[str], accept: bool):
    def answer(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    return answer


def _confirmations(walk: Walk) -> None:
    """Each data-confirm form seen (one of a kind per page): dismissed, nothing changes;
    accepted, it happens, and the page it leads to is looked at."""
    assert walk.confirms, "the walk saw no data-confirm form"
    for number, ((where, view, _), (person, path, action)) in enumerate(
        sorted(walk.confirms.items(), key=lambda item: ORDER.get(item[0][1], 9)), 1
    ):
        page, name = person.page, f"confirmed-{number}-{view.split(':')[-1]}"
        page.goto(walk.base + path)
        button = f'form[data-confirm][action="{action}"] [type=submit] >> nth=0'
        question = page.get_attribute(f'form[data-confirm][action="{action}"] >> nth=0', "data-confirm")  # fmt: skip
        asked: list[str] = []
        before = _state()
        page.once("dialog", _answer(asked, accept=False))
        page.click(button)
        page.wait_for_timeout(200)  # a dismissed form sends nothing: there is no event to await
        assert asked == [question] and page.url == walk.base + path, (name, where, asked)
        assert _state() == before, (name, where, "a dismissed confirmation changed something")
        happened = _effect(view, resolve(urlsplit(action).path).kwargs)
        page.once("dialog", _answer(asked, accept=True))
        rotated = {f"rotated secret {number}": "#shown-secret"} if view.endswith("rotate") else None
        person.submit(name, button, reveals=rotated)
        assert asked == [question, question], (name, asked)
        happened()
        if rotated:
            person.step(f"{name}-reloaded", page.reload)


def _no_secret_anywhere(walk: Walk, root: Person, ann: Person) -> None:
    """Every delivery, event and job page there is, read without a screenshot (the walk
    looked at one of each): no secret the walk made is on any of them."""
    from hooks.models import Delivery, Event
    from jobs.models import Job

    pages = [(root, f"/admin/hooks/delivery/{pk}/change/") for pk in Delivery.objects.values_list("pk", flat=True)]  # fmt: skip
    pages += [(root, f"/admin/hooks/event/{pk}/change/") for pk in Event.objects.values_list("pk", flat=True)]  # fmt: skip
    pages += [(root, f"/admin/jobs/job/{pk}/change/") for pk in Job.objects.values_list("pk", flat=True)]  # fmt: skip
    pages += [(ann, f"/jobs/{pk}/") for pk in Job.objects.values_list("pk", flat=True)]
    for delivery in Delivery.objects.filter(webhook__scope__in=("user", "namespace")):
        hook = delivery.webhook
        path = (f"/accounts/notification/deliveries/{delivery.pk}/" if hook.scope == "user" else
                f"/namespaces/acme/webhooks/{hook.pk}/deliveries/{delivery.pk}/")  # fmt: skip
        pages.append((ann, path))
    for person, path in pages:
        answer = person.page.request.get(walk.base + path)
        assert answer.status == 200, (path, answer.status)
        html = answer.text()
        for label, secret in walk.secrets.items():
            assert secret not in html, (path, f"the {label} is shown again")


def _the_end(walk: Walk, ann: Person, bob: Person) -> None:
    """Deleting a namespace (its own typed confirmation), logging out."""
    from namespaces.models import Namespace

    ann.go("/namespaces/lab/edit/", "namespace-lab-settings")
    ann.page.fill("#confirm", "acme")
    ann.submit("namespace-lab-not-deleted", "button >> text=Delete namespace")
    assert Namespace.objects.filter(path="lab").exists()
    ann.page.fill("#confirm", "lab")
    ann.submit("namespace-lab-deleted", "button >> text=Delete namespace")
    assert not Namespace.objects.filter(path="lab").exists()
    bob.submit("logged-out", "header button >> text=Log out")


def _pin(ann: Person, job: str) -> None:
    """A build pinned, then unpinned, on its namespace page (Djinn's pin)."""
    ann.go(f"/namespaces/acme/jobs/{job}/", "namespace-job")
    ann.submit("namespace-job-pinned", "#pin")
    assert "Unpin" in ann.page.inner_text("#pin"), "the page does not show the pin"
    ann.submit("namespace-job-unpinned", "#pin")
    assert "Pin" == ann.page.inner_text("#pin").strip(), "the page does not show the unpin"


def _unvisited(walk: Walk) -> set[str]:
    """The pages of the user, job and namespace URL confs, the hub's admin pages and the
    admin's own extra views that the walk neither looked at nor posted to."""
    from importlib import import_module

    names = {"home", "api:openapi-view"}
    for conf in ("accounts.urls", "jobs.page_urls", "namespaces.urls", "hooks.urls"):
        module = import_module(conf)
        prefix = f"{module.app_name}:" if getattr(module, "app_name", "") else ""
        names |= {prefix + pattern.name for pattern in module.urlpatterns if pattern.name}
    standard = ("_changelist", "_add", "_change", "_delete", "_history")
    for model_admin in admin.site._registry.values():
        names |= {f"admin:{p.name}" for p in model_admin.get_urls()
                  if p.name and not p.name.endswith(standard)}  # fmt: skip
    return names - walk.seen - walk.posted


def test_the_page_walk(live_server, receiver, monkeypatch, settings, tmp_path, django_user_model):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop
    settings.MEDIA_ROOT = str(tmp_path)
    settings.AXES_ENABLE_ACCESS_FAILURE_LOG = True  # so that its admin list has a row
    from hooks.tools.receiver import Reply

    receiver.respond = lambda r: (
        Reply(503, body=b"busy") if r.path.endswith(("/flaky", "/down")) else Reply()
    )
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    with chromium() as browser:
        walk = Walk(browser, live_server.url, receiver)
        ann, bob, root = walk.person("ann"), walk.person("bob"), walk.person("root")
        ann.go("/", "home")
        _sign_up(ann, "Ann", "ann@example.com")
        _sign_up(bob, "Bob", "bob@example.com")
        _settings(walk, ann)
        _namespaces(walk, ann, bob)
        _admin_world(walk, root)
        jobs = _api_calls(walk)
        _other_rows()
        _lock_out(walk)  # after the logins: one resets the address's failures
        _user_pages(walk, ann, bob, jobs)
        _admin_pages(walk, root)
        _admin_tools(walk, root)
        _hub_edits(walk, ann)
        _pin(ann, jobs[1])  # after the admin's Replay: its events reach the filtered webhook
        _searches(walk, ann, root)
        _confirmations(walk)
        _no_secret_anywhere(walk, root, ann)
        _the_end(walk, ann, bob)
        assert not _unvisited(walk), _unvisited(walk)
        print(
            f"{walk.shots} screenshots, {len(walk.seen)} kinds of page, {len(walk.confirms)} confirmations"
        )

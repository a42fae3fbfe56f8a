"""Searching the delivery history (hooks.tools.search) on every surface (the admin, an
owner's pages, the API, the CLI), each owner seeing only their own, and sending again
everything a search found: the count first, then the same webhook-ids at a real
receiver."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Verifier

import hooks
from accounts.models import ApiToken
from hooks.models import Delivery, Event, Scope, Webhook
from hooks.tools import search
from hooks.tools.receiver import Receiver, Reply
from hooks.worker.attempt import deliver_due
from jobs.events import CALLBACK
from namespaces.models import Namespace
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db(transaction=True)
NOW = timezone.now().replace(microsecond=0)


def person(name: str, **extra):
    email = f"{name}@example.com"
    return get_user_model().objects.create_user(email, email, "pw", **extra)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def delivery(webhook: Webhook, status="succeeded", response=200, type_=TEST_EVENT, ago=0,
             **fields) -> Delivery:  # fmt: skip
    event = Event.objects.create(type=type_, payload={"n": 1}, namespace=webhook.namespace,
                                 created_at=NOW - timedelta(hours=ago))  # fmt: skip
    attempts = 0 if status in ("pending", "skipped") else 1
    return Delivery.objects.create(
        event=event, webhook=webhook, status=status, last_response_status=response,
        attempts=attempts, created_at=NOW - timedelta(hours=ago), **fields,
    )  # fmt: skip


@pytest.fixture
def world():
    """Olga's namespace webhook and notification webhook, and Sam's of each: six
    deliveries of Olga's namespace webhook, one of each other webhook."""
    olga, sam = person("olga"), person("sam")
    acme = Namespace.objects.create(name="acme", path="acme", owner=olga)
    other = Namespace.objects.create(name="other", path="other", owner=sam)
    ours = make_webhook("http://127.0.0.1:9/a", scope=Scope.NAMESPACE, namespace=acme.key,
                        event_types=["*"])  # fmt: skip
    theirs = make_webhook("http://127.0.0.1:9/b", scope=Scope.NAMESPACE, namespace=other.key,
                          event_types=["*"])  # fmt: skip
    olga_note = make_webhook("http://127.0.0.1:9/c", scope=Scope.USER, owner=olga)
    sam_note = make_webhook("http://127.0.0.1:9/d", scope=Scope.USER, owner=sam)
    rows = {
        "ok": delivery(ours, ago=1),
        "failed500": delivery(ours, "failed", 500, ago=26),
        "failed503": delivery(ours, "failed", 503, "test.other", ago=30),
        "noanswer": delivery(ours, "failed", None, ago=50, last_error="Connection refused"),
        "skipped": delivery(ours, "skipped", None, ago=3),
        "pending": delivery(ours, "pending", None, ago=0),
        "theirs": delivery(theirs, "failed", 500, ago=26),
        "olga_note": delivery(olga_note, "failed", 500, ago=2),
        "sam_note": delivery(sam_note, "failed", 500, ago=2),
    }
    # Two of them about job 7 (their events' subject), one of another webhook too.
    about_job = [rows["ok"].event_id, rows["failed500"].event_id, rows["theirs"].event_id]
    Event.objects.filter(pk__in=about_job).update(subject="job:7")
    return {"olga": olga, "sam": sam, "acme": acme, "ours": ours, "their_hook": theirs,
            "olga_note": olga_note, "sam_note": sam_note, **rows}  # fmt: skip


def iso(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%d %H:%M:%S")


# Each filter of Olga's namespace webhook's deliveries: (query, the rows it finds).
FILTERS = [
    ({}, ["pending", "ok", "skipped", "failed500", "failed503", "noanswer"]),
    ({"status": ["failed"]}, ["failed500", "failed503", "noanswer"]),
    ({"status": ["skipped", "pending"]}, ["pending", "skipped"]),
    ({"event_type": "test.other"}, ["failed503"]),
    ({"since": iso(28)}, ["pending", "ok", "skipped", "failed500"]),
    ({"until": iso(28)}, ["failed503", "noanswer"]),
    ({"since": iso(40), "until": iso(2)}, ["skipped", "failed500", "failed503"]),
    ({"response_status": "500"}, ["failed500"]),
    ({"response_status": "5xx"}, ["failed500", "failed503"]),
    ({"response_status": "2xx"}, ["ok"]),
    ({"response_status": "none"}, ["noanswer"]),
    ({"status": ["failed"], "since": iso(28), "response_status": "5xx"}, ["failed500"]),
    ({"subject": "job:7"}, ["ok", "failed500"]),
    ({"subject": "job:8"}, []),
]


def names(world, found) -> list[str]:
    by_id = {str(world[k].pk): k for k in world if isinstance(world[k], Delivery)}
    return [by_id.get(str(getattr(d, "pk", d)), "another's") for d in found]


@pytest.mark.parametrize("query, expected", FILTERS)
def test_each_filter_finds_its_deliveries_newest_first(world, query, expected):
    form = search.SearchForm(query)
    assert form.is_valid(), form.errors
    found = form.search(Delivery.objects.filter(webhook=world["ours"]))
    assert names(world, found) == expected


def test_a_webhook_id_or_an_event_id_finds_its_delivery(world):
    base = Delivery.objects.filter(webhook=world["ours"])
    row = world["failed503"]
    for value in (str(row.pk), str(row.event_id), str(row.pk).upper()):
        form = search.SearchForm({"q": value})
        assert form.is_valid()
        assert names(world, form.search(base)) == ["failed503"]
    # Another webhook's delivery is not found through this one's deliveries.
    form = search.SearchForm({"q": str(world["theirs"].pk)})
    assert form.is_valid() and not form.search(base).exists()


BAD = [
    ({"status": ["lost"]}, "status", "not one of the available choices"),
    ({"since": "yesterday"}, "since", "valid date/time"),
    ({"since": iso(1), "until": iso(5)}, "until", "must be after 'since'"),
    ({"response_status": "5x"}, "response_status", "write 500, a class like 5xx, or none"),
    ({"response_status": "600"}, "response_status", "not a response status"),
    ({"q": "42"}, "q", "not a webhook-id or an event id"),
    ({"event_type": "Not A Type!"}, "event_type", "must look like"),
    ({"subject": "job 7"}, "subject", "visible ASCII"),
]


@pytest.mark.parametrize("query, field, message", BAD)
def test_a_bad_filter_is_refused_with_a_clear_message(query, field, message):
    form = search.SearchForm(query)
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


# --- owners' pages --------------------------------------------------------------------
def ns_page(world) -> str:
    return f"/namespaces/acme/webhooks/{world['ours'].pk}/deliveries/"


def shown_rows(world, response) -> list[str]:
    """The deliveries a page lists, by the webhook-id in each row's title."""
    html = response.content.decode()
    ids = [part.split('"')[0] for part in html.split('title="webhook-id ')[1:]]
    return names(world, ids)


@pytest.mark.parametrize("query, expected", FILTERS)
def test_each_filter_on_a_namespace_webhooks_page(world, query, expected):
    response = logged_in(world["olga"]).get(ns_page(world), query)
    assert response.status_code == 200
    assert shown_rows(world, response) == expected


def test_the_namespace_page_finds_by_id_and_never_shows_anothers(world):
    olga = logged_in(world["olga"])
    found = olga.get(ns_page(world), {"q": str(world["noanswer"].event_id)})
    assert shown_rows(world, found) == ["noanswer"]
    for other in ("theirs", "sam_note", "olga_note"):  # another webhook's, even her own
        assert shown_rows(world, olga.get(ns_page(world), {"q": str(world[other].pk)})) == []
    # Sam may not open Olga's webhook's history, nor send it again.
    sam = logged_in(world["sam"])
    assert sam.get(ns_page(world)).status_code == 404
    assert sam.post(ns_page(world) + "retry/", {"count": "9"}).status_code == 404
    assert Delivery.objects.filter(manual=True).count() == 0


def test_the_namespace_page_refuses_a_bad_filter_and_shows_nothing(world):
    response = logged_in(world["olga"]).get(ns_page(world), {"response_status": "abc"})
    assert response.status_code == 400
    assert "write 500, a class like 5xx, or none" in response.content.decode()
    assert shown_rows(world, response) == []


def test_the_namespace_page_pages_with_a_cursor_through_equal_times(world):
    same = [delivery(world["ours"], "failed", 502, ago=100) for _ in range(5)]
    olga = logged_in(world["olga"])
    seen, query = [], {"response_status": "502"}
    for _ in range(10):
        response = olga.get(ns_page(world) + "?" + "&".join(f"{k}={v}" for k, v in query.items()))
        html = response.content.decode()
        seen += [part.split('"')[0] for part in html.split('title="webhook-id ')[1:]]
        if 'id="older"' not in html:
            break
        following = html.split('id="older"')[0].rsplit('href="?', 1)[1].split('"')[0]
        query = dict(pair.split("=", 1) for pair in following.replace("&amp;", "&").split("&"))
    assert sorted(seen) == sorted(str(d.pk) for d in same)  # each once, none lost


def test_the_page_size_splits_pages_and_the_cursor_resumes(world):
    base = Delivery.objects.filter(webhook=world["ours"])
    first = hooks.search_page(base, None, 4)
    assert names(world, first.deliveries) == ["pending", "ok", "skipped", "failed500"]
    second = hooks.search_page(base, first.next_cursor, 4)
    assert names(world, second.deliveries) == ["failed503", "noanswer"]
    assert second.next_cursor is None
    with pytest.raises(ValueError, match="not a page cursor"):
        hooks.search_page(base, "nonsense", 4)


def test_the_account_page_searches_only_the_users_notification_webhook(world):
    olga = logged_in(world["olga"])
    page = olga.get("/accounts/notification/deliveries/", {"status": ["failed"]})
    assert page.status_code == 200 and shown_rows(world, page) == ["olga_note"]
    assert shown_rows(world, olga.get("/accounts/notification/deliveries/",
                                      {"q": str(world["sam_note"].pk)})) == []  # fmt: skip
    assert shown_rows(world, olga.get("/accounts/notification/deliveries/",
                                      {"status": ["succeeded"]})) == []  # fmt: skip
    bad = olga.get("/accounts/notification/deliveries/", {"since": "soon"})
    assert bad.status_code == 400 and "valid date/time" in bad.content.decode()


# --- the admin ------------------------------------------------------------------------
ADMIN = "/admin/hooks/delivery/search/"


@pytest.mark.parametrize("query, expected", FILTERS[1:])
def test_each_filter_in_the_admin_search(world, admin_client, query, expected):
    response = admin_client.get(ADMIN, {**query, "webhook": world["ours"].pk})
    assert response.status_code == 200
    assert shown_rows(world, response) == expected


def test_the_admin_search_spans_webhooks_and_refuses_bad_input(world, admin_client):
    response = admin_client.get(ADMIN, {"response_status": "500"})
    assert sorted(shown_rows(world, response)) == ["failed500", "olga_note", "sam_note", "theirs"]
    assert shown_rows(world, admin_client.get(ADMIN, {"q": str(world["theirs"].event_id)})) == [
        "theirs"
    ]
    missing = admin_client.get(ADMIN, {"webhook": 999_999})
    assert missing.status_code == 400 and "No webhook 999999" in missing.content.decode()
    # The change list's own search box looks a UUID up exactly, as a webhook-id or event id.
    listed = admin_client.get("/admin/hooks/delivery/", {"q": str(world["ok"].event_id)})
    assert str(world["ok"].pk)[:8] in listed.content.decode()
    assert str(world["failed500"].pk)[:8] not in listed.content.decode()


def test_the_admin_search_needs_the_view_permission_and_retry_the_change(world):
    clerk = person("clerk", is_staff=True)
    assert logged_in(clerk).get(ADMIN).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    viewer = logged_in(clerk)
    assert viewer.get(ADMIN).status_code == 200
    assert viewer.get(ADMIN + "retry/", {"status": "failed"}).status_code == 200  # the count
    refused = viewer.post(ADMIN + "retry/", {"status": "failed", "count": "9"})
    assert refused.status_code == 403
    assert Delivery.objects.filter(manual=True).count() == 0


# --- the API --------------------------------------------------------------------------
class Api:
    def __init__(self, user):
        self.raw = ApiToken.issue(user, f"api {ApiToken.objects.count()}")[1]
        self.client = Client()

    def get(self, path: str, query=None):
        return self.client.get(f"/api/v1{path}", query or {},
                               HTTP_AUTHORIZATION=f"Bearer {self.raw}")  # fmt: skip

    def post(self, path: str, body: dict):
        return self.client.post(f"/api/v1{path}", json.dumps(body), content_type="application/json",
                                HTTP_AUTHORIZATION=f"Bearer {self.raw}")  # fmt: skip


def api_rows(world, response) -> list[str]:
    assert response.status_code == 200, response.content
    return names(world, [row["id"] for row in response.json()])


@pytest.mark.parametrize("query, expected", FILTERS)
def test_each_filter_in_the_api(world, query, expected):
    api = Api(world["olga"])
    given = {**query, "status": ",".join(query["status"])} if "status" in query else query
    assert api_rows(world, api.get(f"/webhooks/{world['ours'].pk}/deliveries", given)) == expected


def test_the_api_finds_by_id_across_the_callers_webhooks_only(world):
    api = Api(world["olga"])
    found = api.get("/deliveries", {"q": str(world["failed500"].pk)})
    assert api_rows(world, found) == ["failed500"]
    assert found.json()[0]["webhook"] == world["ours"].pk
    assert found.json()[0]["last_response_status"] == 500
    assert api_rows(world, api.get("/deliveries", {"q": str(world["theirs"].event_id)})) == []
    everything = api_rows(world, api.get("/deliveries", {"response_status": "500"}))
    assert sorted(everything) == ["failed500", "olga_note"]
    refused = api.get("/deliveries", {"webhook": world["their_hook"].pk})
    assert refused.status_code == 400 and refused.json()["field"] == "webhook", refused.json()
    assert api.get(f"/webhooks/{world['their_hook'].pk}/deliveries").status_code == 404


@pytest.mark.parametrize("query, field", [({"status": "lost"}, "status"),
                                          ({"since": "nope"}, "since"),
                                          ({"q": "123"}, "q"),
                                          ({"response_status": "9xx"}, "response_status"),
                                          ({"cursor": "x_y"}, "cursor")])  # fmt: skip
def test_the_api_refuses_a_bad_filter_with_its_field(world, query, field):
    response = Api(world["olga"]).get(f"/webhooks/{world['ours'].pk}/deliveries", query)
    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"].startswith(field)


def test_the_api_pages_with_next_cursor(world):
    api = Api(world["olga"])
    path = f"/webhooks/{world['ours'].pk}/deliveries"
    first = api.get(path, {"limit": 4})
    assert len(first.json()) == 4 and first["Next-Cursor"]
    rest = api.get(path, {"limit": 4, "cursor": first["Next-Cursor"]})
    assert api_rows(world, rest) == ["failed503", "noanswer"] and "Next-Cursor" not in rest


# --- retrying what a search found -------------------------------------------------------
def failed_at(receiver: Receiver, olga, count: int) -> Webhook:
    """A webhook of Olga's namespace `builds` whose receiver answered 500 to `count`
    events once each (one attempt allowed: each is failed)."""
    space = Namespace.objects.create(name="builds", path="builds", owner=olga)
    hook = make_webhook(receiver.url, scope=Scope.NAMESPACE, namespace=space.key,
                        event_types=["*"])  # fmt: skip
    for n in range(count):
        hooks.emit(TEST_EVENT, {"n": n}, namespace=space.key)
    Delivery.objects.filter(webhook=hook).update(max_attempts=1)
    assert deliver_due() == count
    assert Delivery.objects.filter(webhook=hook, status="failed").count() == count
    return hook


@pytest.fixture
def flaky():
    """A receiver that answers 500 until told to answer 200."""
    answers = {"status": 500}
    with Receiver(respond=lambda request: Reply(status=answers["status"])) as r:
        r.answers = answers
        yield r


def test_the_owner_sees_the_count_then_the_receiver_gets_the_same_webhook_ids(world, flaky):
    hook = failed_at(flaky, world["olga"], 3)
    first_ids = sorted(r.headers["webhook-id"] for r in flaky.requests)
    olga = logged_in(world["olga"])
    retry = f"/namespaces/builds/webhooks/{hook.pk}/deliveries/retry/"
    query = {"status": "failed", "response_status": "500"}
    shown = olga.get(retry, query)
    assert shown.status_code == 200
    assert "<strong>3</strong> deliveries will be sent again" in shown.content.decode()
    assert Delivery.objects.filter(webhook=hook, manual=True).count() == 0  # nothing yet
    flaky.answers["status"] = 200
    sent = olga.post(retry, {**query, "count": "3"})
    assert sent.status_code == 302 and "status=failed" in sent["Location"]
    assert deliver_due() == 3
    again = flaky.requests[3:]
    assert sorted(r.headers["webhook-id"] for r in again) == first_ids
    for request in again:
        Verifier(hook.secret).verify(request.body, request.headers)
    assert Delivery.objects.filter(webhook=hook, status="succeeded").count() == 3
    # The other webhooks' failures were not touched.
    assert Delivery.objects.filter(pk=world["failed500"].pk, status="failed").exists()


def test_no_more_than_the_count_shown_are_sent_again(world, flaky):
    hook = failed_at(flaky, world["olga"], 3)
    response = logged_in(world["olga"]).post(
        f"/namespaces/builds/webhooks/{hook.pk}/deliveries/retry/",
        {"status": "failed", "count": "2"},
    )
    assert response.status_code == 302
    assert Delivery.objects.filter(webhook=hook, status="pending", manual=True).count() == 2


def test_a_bad_search_or_a_missing_count_sends_nothing(world):
    olga = logged_in(world["olga"])
    retry = ns_page(world) + "retry/"
    bad = olga.post(retry, {"status": "lost", "count": "3"})
    assert bad.status_code == 400 and "nothing was sent" in bad.content.decode()
    unconfirmed = olga.post(retry, {"status": "failed"})
    assert unconfirmed.status_code == 400
    assert "Confirm the number of deliveries shown first" in unconfirmed.content.decode()
    assert Delivery.objects.filter(manual=True).count() == 0


def test_too_many_matches_are_refused_before_anything_is_sent(world, monkeypatch):
    monkeypatch.setattr(search, "RETRY_LIMIT", 2)
    response = logged_in(world["olga"]).post(ns_page(world) + "retry/",
                                             {"status": "failed", "count": "3"})  # fmt: skip
    assert (
        response.status_code == 400 and "More than 2 deliveries match" in response.content.decode()
    )
    assert Delivery.objects.filter(manual=True).count() == 0


def test_batches_queue_each_match_once_even_at_equal_times(world):
    rows = [delivery(world["ours"], "failed", 418, ago=200) for _ in range(7)]
    matching = Delivery.objects.filter(webhook=world["ours"], last_response_status=418,
                                       status="failed")  # fmt: skip
    assert search.retry_matching(matching, 7, batch=2) == 7
    queued = Delivery.objects.filter(pk__in=[d.pk for d in rows], status="pending", manual=True)
    assert queued.count() == 7
    assert Delivery.objects.filter(manual=True).count() == 7  # nothing else


def test_the_admin_retries_a_search_across_webhooks(world, admin_client):
    shown = admin_client.get(ADMIN + "retry/", {"response_status": "500", "status": "failed"})
    assert "<strong>4</strong> deliveries will be sent again" in shown.content.decode()
    done = admin_client.post(ADMIN + "retry/", {"response_status": "500", "status": "failed",
                                                "count": "4"})  # fmt: skip
    assert done.status_code == 302
    assert sorted(names(world, Delivery.objects.filter(manual=True))) == [
        "failed500", "olga_note", "sam_note", "theirs"]  # fmt: skip


def test_the_api_answers_a_dry_run_then_sends_the_same_webhook_ids(world, flaky):
    hook = failed_at(flaky, world["olga"], 2)
    api = Api(world["olga"])
    path = f"/webhooks/{hook.pk}/deliveries/retry"
    dry = api.post(path, {"status": ["failed"]})
    assert dry.status_code == 200 and dry.json() == {"matching": 2, "queued": 0, "dry_run": True}
    assert Delivery.objects.filter(webhook=hook, manual=True).count() == 0
    bad = api.post(path, {"status": ["failed"], "since": "then", "count": 2})
    assert bad.status_code == 400 and bad.json()["field"] == "since"
    assert api.post(path, {"webhook": 1}).status_code == 400
    flaky.answers["status"] = 200
    sent = api.post(path, {"status": ["failed"], "count": 2})
    assert sent.status_code == 202 and sent.json() == {"matching": 2, "queued": 2, "dry_run": False}
    assert deliver_due() == 2
    assert sorted(r.headers["webhook-id"] for r in flaky.requests[2:]) == sorted(
        r.headers["webhook-id"] for r in flaky.requests[:2])  # fmt: skip
    # Sam's token neither counts nor sends Olga's.
    assert Api(world["sam"]).post(path, {"count": 2}).status_code == 404
    across = Api(world["sam"]).post("/deliveries/retry", {"q": str(world["failed500"].pk)})
    assert across.json()["matching"] == 0


def test_the_cli_prints_the_count_and_asks_first(world, flaky, monkeypatch):
    hook = failed_at(flaky, world["olga"], 2)
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    call_command("webhooks", "retry", "--webhook", str(hook.pk), "--status", "failed",
                 stdout=out, stderr=io.StringIO())  # fmt: skip
    assert "2 deliveries match" in out.getvalue() and "Send 2 again" in out.getvalue()
    assert "Nothing was sent." in out.getvalue()
    assert Delivery.objects.filter(webhook=hook, manual=True).count() == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    out = io.StringIO()
    call_command("webhooks", "retry", "--webhook", str(hook.pk), "--status", "failed",
                 "--response-status", "5xx", stdout=out, stderr=io.StringIO())  # fmt: skip
    assert "2 deliveries queued to be sent again (of 2)" in out.getvalue()
    flaky.answers["status"] = 200
    assert deliver_due() == 2
    assert len({r.headers["webhook-id"] for r in flaky.requests}) == 2  # the same two ids


def test_the_cli_with_yes_does_not_ask_and_refuses_a_bad_filter(world):
    out = io.StringIO()
    call_command("webhooks", "retry", "--id", str(world["noanswer"].event_id), "--yes",
                 stdout=out, stderr=io.StringIO())  # fmt: skip
    assert "1 delivery match" in out.getvalue() and "1 delivery queued" in out.getvalue()
    with pytest.raises(CommandError, match="response_status: '7' is not a response status"):
        call_command("webhooks", "retry", "--response-status", "7", "--yes", stdout=io.StringIO())
    with pytest.raises(CommandError, match="id: 'abc' is not a webhook-id"):
        call_command("webhooks", "retry", "--id", "abc", "--yes", stdout=io.StringIO())
    assert Delivery.objects.filter(manual=True).count() == 1


def test_an_unknown_uuid_finds_nothing(world):
    form = search.SearchForm({"q": str(uuid.uuid4())})
    assert form.is_valid() and not form.search(Delivery.objects.all()).exists()


def callback(user, job_id: str, status: str, response, ago: float) -> Delivery:
    """A job's callback delivery (no webhook: the job's own URL), as jobs.events records."""
    event = Event.objects.create(type=CALLBACK, payload={"id": job_id}, user=user,
                                 created_at=NOW - timedelta(hours=ago))  # fmt: skip
    return Delivery.objects.create(event=event, target_url="http://127.0.0.1:9/cb", status=status,
                                   last_response_status=response, attempts=1,
                                   created_at=NOW - timedelta(hours=ago))  # fmt: skip


def test_the_jobs_callbacks_page_searches_only_the_users_callbacks(world):
    mine = [
        callback(world["olga"], "job-1", "failed", 500, 1),
        callback(world["olga"], "job-2", "succeeded", 200, 2),
    ]
    theirs = callback(world["sam"], "job-3", "failed", 500, 1)
    olga = logged_in(world["olga"])
    page = olga.get("/jobs/callbacks/", {"status": "failed"})
    html = page.content.decode()
    assert page.status_code == 200 and str(mine[0].pk) in html
    assert str(mine[1].pk) not in html and str(theirs.pk) not in html
    assert "/jobs/job-1/callbacks/" in html  # its Redeliver, on its job's page
    lookup = olga.get("/jobs/callbacks/", {"q": str(theirs.pk)}).content.decode()
    assert 'title="webhook-id' not in lookup and "No callback matches." in lookup
    assert olga.get("/jobs/callbacks/", {"until": "never"}).status_code == 400
    counted = olga.get("/jobs/callbacks/retry/", {"response_status": "5xx"})
    assert "<strong>1</strong> delivery will be sent again" in counted.content.decode()
    sent = olga.post("/jobs/callbacks/retry/", {"response_status": "5xx", "count": "1"})
    assert sent.status_code == 302
    assert list(Delivery.objects.filter(manual=True)) == [mine[0]]

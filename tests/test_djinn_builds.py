"""A namespace's jobs as Djinn CI's builds, end to end: a receiver written for Djinn (a
real HTTP server on 127.0.0.1) checks `X-Djinn-CI-Signature` over the raw body with the
secret as typed, and branches on Djinn's status words; tags, pins, the headers and the
body bytes as Djinn sends them; a namespace webhook's timeout."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Verifier

from hooks import conf
from hooks.models import Delivery, Event, Webhook
from hooks.outgoing.request import build
from hooks.tools.receiver import Received, Receiver, Reply
from hooks.worker.attempt import deliver_due
from jobs import runner
from jobs.models import Endpoint, Job
from jobs.scheduled import run_cron
from namespaces.models import Collaborator, Cron, Namespace

pytestmark = pytest.mark.django_db(transaction=True)  # events leave after commit
SECRET = "my-djinn-secret-0123"  # pasted as typed, as a Djinn receiver has it
# What a Djinn receiver does for each final status of a build; any other word is a
# status it does not know (RunPod's COMPLETED would be one), answered 422.
ACTIONS = {"passed": "deploy", "passed_with_failures": "deploy", "failed": "page the team",
           "killed": "note it", "timed_out": "retry"}  # fmt: skip
DJINN_STATUSES = {"queued", "running", *ACTIONS}


class DjinnReceiver:
    """A receiver as one writes it for Djinn: verify the signature, then act on the
    event and the build's status."""

    def __init__(self, secret: str):
        self.secret = secret.encode()
        self.seen: list[dict] = []  # the verified ones: event, body, raw bytes, headers
        self.refused: list[str] = []

    def __call__(self, request: Received) -> Reply:
        expected = "sha256=" + hmac.new(self.secret, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Djinn-CI-Signature", ""), expected):
            self.refused.append("signature")
            return Reply(401, body=b"bad signature")
        event = request.headers["X-Djinn-CI-Event"]
        body = json.loads(request.body)
        build = body.get("build", body) if event.startswith("build.") else None
        if build is not None and build["status"] not in DJINN_STATUSES:
            self.refused.append(build["status"])
            return Reply(422, body=b"unknown status")
        action = ACTIONS.get(build["status"]) if event == "build.finished" else None
        self.seen.append({"event": event, "body": body, "raw": request.body,
                          "headers": request.headers, "action": action})  # fmt: skip
        return Reply(200)

    def of(self, event: str) -> list[dict]:
        return [s for s in self.in_order() if s["event"] == event]

    def in_order(self) -> list[dict]:
        """In the order the events happened (deliveries are sent concurrently)."""
        happened = dict(Delivery.objects.values_list("id", "event__created_at"))
        return sorted(self.seen, key=lambda s: happened[uuid.UUID(s["headers"]["webhook-id"])])


@pytest.fixture
def djinn():
    handler = DjinnReceiver(SECRET)
    with Receiver(respond=handler) as server:
        handler.url = server.url
        yield handler


@pytest.fixture
def acme(ann):
    return Namespace.objects.create(owner=ann, name="acme", path="acme")


def djinn_webhook(client: Client, namespace: Namespace, url: str, **fields) -> Webhook:
    """The owner adds a webhook on the namespace's page, Djinn headers on, their Djinn
    secret pasted."""
    data = {"url": url, "verify_tls": "on", "active": "on", "all_events": "on",
            "djinn_headers": "on", "secret_action": "paste", "pasted_secret": SECRET, **fields}  # fmt: skip
    response = client.post(f"/namespaces/{namespace.path}/webhooks/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return Webhook.objects.get(namespace=namespace.key, url=url)


def submit(api, **input) -> str:
    answer = api("POST", "/v2/echo/run", {"input": input, "namespace": "acme"})
    assert answer.status_code == 200, answer.content
    return answer.json()["id"]


def test_a_djinn_receiver_gets_each_ending_in_its_own_words(client, ann, api, acme, djinn):
    """A build that passes, fails, is killed (cancelled) and times out: the receiver
    verifies every request and acts on Djinn's status, never meeting RunPod's words."""
    client.force_login(ann)
    hook = djinn_webhook(client, acme, djinn.url)
    passes, fails = submit(api, prompt="hi"), submit(api, error="it broke")
    killed, late = submit(api, prompt="stop me"), submit(api, prompt="too late")
    runner.run(passes)
    runner.run(fails)  # echo returns {"error": …}: the job FAILED, as RunPod's rule has it
    assert api("POST", f"/v2/echo/cancel/{killed}").json()["status"] == "CANCELLED"
    Job.objects.filter(pk=late).update(created_at=timezone.now() - timedelta(days=2))
    assert runner.run(late) == "TIMED_OUT"  # its ttl ran out before it started
    deliver_due()

    assert djinn.refused == []
    finished = {s["body"]["id"]: s for s in djinn.of("build.finished")}
    assert {job: finished[job]["action"] for job in (passes, fails, killed, late)} == {
        passes: "deploy", fails: "page the team", killed: "note it", late: "retry"
    }  # fmt: skip
    assert [finished[j]["body"]["status"] for j in (passes, fails, killed, late)] == [
        "passed", "failed", "killed", "timed_out"
    ]  # fmt: skip
    assert {s["body"]["status"] for s in djinn.of("build.submitted")} == {"queued"}
    assert {s["body"]["status"] for s in djinn.of("build.started")} == {"running"}
    done = finished[passes]["body"]
    assert done["output"] == {"prompt": "hi"} and done["manifest"] == '{"prompt":"hi"}'
    assert done["started_at"] and done["finished_at"] and done["created_at"] <= done["finished_at"]
    assert done["trigger"] == {"type": "manual", "comment": "",
                               "data": {"email": ann.email, "username": ann.username}}  # fmt: skip
    assert done["pinned"] is False and done["number"] == 1 and done["namespace"]["path"] == "acme"
    assert done["url"].endswith(f"/namespaces/acme/jobs/{passes}/")
    assert done["tags_url"].endswith(f"/v2/echo/tag/{passes}") and done["artifacts_url"] is None
    assert finished[fails]["body"]["error"] and finished[late]["body"]["started_at"] is None
    for seen in djinn.seen:  # Djinn's headers, over the bytes as sent
        headers, raw = seen["headers"], seen["raw"]
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert headers["Accept"] == "*/*" and headers["User-Agent"] == "Djinn-CI-Hook"
        assert headers["X-Djinn-CI-Hook-ID"] == str(hook.pk)
        assert raw.endswith(b"}\n") and not raw.endswith(b"\n\n")
        Verifier(SECRET.encode()).verify(raw, headers)  # Standard Webhooks signs them too


def test_tags_added_together_are_one_build_tagged_whose_urls_open(client, ann, api, acme, djinn):
    client.force_login(ann)
    djinn_webhook(client, acme, djinn.url, all_events="", events=["build.tagged"])
    job_id, other = submit(api, prompt="a"), submit(api, prompt="b")
    answer = api("POST", f"/v2/echo/tag/{job_id}", {"tags": ["release", "v1.2"]})
    assert answer.json()["added"] == ["release", "v1.2"]
    api("POST", f"/v2/echo/tag/{job_id}", {"tags": ["release"]})  # nothing new: no event
    deliver_due()

    [tagged] = djinn.of("build.tagged")
    body = tagged["body"]
    assert sorted(body) == ["build", "tags", "url", "user"]
    assert [t["name"] for t in body["tags"]] == ["release", "v1.2"]
    assert body["build"]["id"] == job_id and body["build"]["tags"] == ["release", "v1.2"]
    assert body["url"] == body["build"]["url"] and body["user"]["id"] == ann.pk
    link = urlsplit(body["tags"][1]["url"])
    page = client.get(f"{link.path}?{link.query}")
    listed = page.content.decode()
    assert page.status_code == 200 and job_id in listed and other not in listed


def test_members_pin_and_unpin_on_the_page_and_through_the_api(client, ann, api, acme, djinn):
    client.force_login(ann)
    djinn_webhook(client, acme, djinn.url, all_events="",
                  events=["build.pinned", "build.unpinned"])  # fmt: skip
    job_id = submit(api, prompt="keep")
    carl = get_user_model().objects.create_user("carl", "carl@example.com", "pw")
    Collaborator.objects.create(namespace=acme, user=carl)
    sam = get_user_model().objects.create_user("sam", "sam@example.com", "pw")
    member, stranger = Client(), Client()
    member.force_login(carl)
    stranger.force_login(sam)

    job_page = member.get(f"/namespaces/acme/jobs/{job_id}/").content.decode()
    assert f'action="/jobs/{job_id}/pin/"' in job_page and ">Pin</button>" in job_page
    assert stranger.post(f"/jobs/{job_id}/pin/").status_code == 404
    response = member.post(f"/jobs/{job_id}/pin/")
    assert (
        response.status_code == 302 and response["Location"] == f"/namespaces/acme/jobs/{job_id}/"
    )
    assert member.post(f"/jobs/{job_id}/pin/").status_code == 302  # already pinned: no event
    assert ">Unpin</button>" in member.get(f"/namespaces/acme/jobs/{job_id}/").content.decode()
    assert api("POST", f"/v2/echo/unpin/{job_id}").json() == {
        "id": job_id, "pinned": False, "changed": True}  # fmt: skip
    deliver_due()

    assert [(s["event"], s["body"]["pinned"]) for s in djinn.in_order()] == [
        ("build.pinned", True), ("build.unpinned", False)
    ]  # fmt: skip
    [pinned] = djinn.of("build.pinned")
    assert pinned["body"]["id"] == job_id and pinned["body"]["status"] == "queued"
    assert Job.objects.get(pk=job_id).pinned is False


def test_a_cron_jobs_build_was_triggered_by_its_schedule(client, ann, acme, djinn):
    client.force_login(ann)
    djinn_webhook(client, acme, djinn.url, all_events="", events=["build.submitted"])
    nightly = Cron.objects.create(namespace=acme, author=ann, name="nightly",
                                  endpoint=Endpoint.objects.get(name="echo"), input={"n": 1})  # fmt: skip
    run_cron(nightly.pk)
    deliver_due()
    [submitted] = djinn.of("build.submitted")
    assert submitted["body"]["trigger"] == {
        "type": "schedule", "comment": "nightly: scheduled by cron 0 0 * * *",
        "data": {"email": ann.email, "username": ann.username},
    }  # fmt: skip
    assert submitted["body"]["manifest"] == '{"n":1}' and submitted["body"]["tags"] == ["cron"]


def test_a_namespace_webhook_waits_a_minute_unless_its_owner_sets_a_timeout(client, ann, acme):
    client.force_login(ann)
    hook = djinn_webhook(client, acme, "https://ci.example.com/hook")
    assert hook.timeout is None and _timeout_of(hook) == 60.0  # Djinn's client: a minute
    edit = f"/namespaces/acme/webhooks/{hook.pk}/"
    form = client.get(edit).content.decode()
    assert 'name="timeout"' in form
    base = {"url": hook.url, "verify_tls": "on", "active": "on", "all_events": "on",
            "djinn_headers": "on", "secret_action": "keep"}  # fmt: skip
    assert client.post(edit, {**base, "timeout": "5"}).status_code == 302
    hook.refresh_from_db()
    assert hook.timeout == 5.0 and _timeout_of(hook) == 5.0
    refused = client.post(edit, {**base, "timeout": "0"})
    assert refused.status_code == 400 and "Give a timeout between 0 and" in refused.content.decode()
    hook.refresh_from_db()
    assert hook.timeout == 5.0  # a refused change changes nothing


def test_without_djinn_headers_the_body_and_content_type_are_the_hubs(client, ann, api, acme):
    with Receiver() as plain:
        client.force_login(ann)
        djinn_webhook(client, acme, plain.url, djinn_headers="", all_events="",
                      events=["build.submitted"])  # fmt: skip
        submit(api, prompt="hi")
        deliver_due()
        [request] = plain.requests
    assert request.headers["Content-Type"] == "application/json"
    assert not request.body.endswith(b"\n") and "X-Djinn-CI-Signature" not in request.headers


def _timeout_of(hook: Webhook) -> float:
    """The timeout of a request the sender would make to `hook` now."""
    event = Event(type="build.submitted", payload={"id": "x"}, created_at=timezone.now())
    return build(Delivery(webhook=hook, event=event), conf.settings(), timezone.now()).timeout

"""Namespaces (Djinn CI): members, invites, resources, their events, and the owner's
webhook pages, driven through the pages as people use them, with a real receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Verifier

from accounts.models import ApiToken
from hooks.models import Attempt, Delivery, Webhook
from hooks.worker.attempt import deliver_due
from jobs import runner
from jobs.models import Endpoint, Job
from namespaces.models import (
    Collaborator,
    Cron,
    Image,
    Invite,
    Namespace,
    Object,
    SentInvite,
    SSHKey,
    Variable,
)

pytestmark = pytest.mark.django_db(transaction=True)  # events leave after commit
User = get_user_model()
ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy@ci"
)


def person(name: str, **extra) -> User:
    email = f"{name}@example.com"
    return User.objects.create_user(email, email, "pw", name=name.title(), **extra)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner():
    return person("olga")


@pytest.fixture
def colleague():
    return person("carl")


@pytest.fixture
def stranger():
    return person("sam")


def create_namespace(client: Client, name: str = "acme", **fields) -> Namespace:
    data = {"name": name, "description": "Our builds", "visibility": "private", **fields}
    response = client.post("/namespaces/new/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Namespace.objects.get(name=name)


def add_webhook(client: Client, namespace: Namespace, url: str, **fields) -> Webhook:
    data = {"url": url, "verify_tls": "on", "active": "on", "all_events": "on", **fields}
    response = client.post(f"/namespaces/{namespace.path}/webhooks/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return Webhook.objects.get(namespace=namespace.key, url=url)


def join(owner_client: Client, namespace: Namespace, user) -> None:
    response = owner_client.post(f"/namespaces/{namespace.path}/invite/", {"who": user.email})
    assert response.status_code == 302, response.content.decode()[:2000]
    invite = Invite.objects.get(invitee=user)
    assert logged_in(user).post(f"/namespaces/invites/{invite.pk}/accept/").status_code == 302


def received(receiver, path: str) -> list[dict]:
    """What reached the receiver at URL path ending `path`, in the order the events
    happened (deliveries are sent concurrently, so they may arrive in any order)."""
    deliver_due()
    got = [
        {"type": r.headers["X-Webhookhub-Event"], "body": json.loads(r.body), "headers": r.headers}
        for r in receiver.requests
        if r.path.endswith(path)
    ]
    order = dict(Delivery.objects.values_list("id", "event__created_at"))
    return sorted(got, key=lambda g: order[uuid.UUID(g["headers"]["webhook-id"])])


# --- events ---------------------------------------------------------------------------
def test_every_namespace_event_reaches_its_subscribed_webhook_only(owner, colleague, receiver):
    client = logged_in(owner)
    acme = create_namespace(client)
    other = create_namespace(client, "other")
    hook = add_webhook(client, acme, receiver.url + "/all", djinn_headers="on")
    add_webhook(client, acme, receiver.url + "/variables", all_events="", events=["variables"])
    add_webhook(client, other, receiver.url + "/other")

    join(client, acme, colleague)
    reject = person("rita")
    client.post(f"/namespaces/{acme.path}/invite/", {"who": "Rita@Example.com"})  # as typed
    logged_in(reject).post(f"/namespaces/invites/{Invite.objects.get(invitee=reject).pk}/reject/")
    client.post(
        f"/namespaces/{acme.path}/edit/", {"description": "Changed", "visibility": "internal"}
    )
    work = logged_in(colleague)
    work.post(f"/namespaces/{acme.path}/variables/", {"key": "REGION", "value": "eu-west-1"})
    work.post(
        f"/namespaces/{acme.path}/variables/",
        {"key": "TOKEN", "value": "s3cr3t-v4lue", "masked": "on"},
    )
    token = Variable.objects.get(key="TOKEN")
    work.post(
        f"/namespaces/{acme.path}/variables/{token.pk}/",
        {"key": "TOKEN", "value": "", "masked": "on"},
    )
    work.post(f"/namespaces/{acme.path}/variables/{token.pk}/delete/")
    work.post(f"/namespaces/{acme.path}/keys/", {"name": "deploy", "public_key": ED25519})

    got = received(receiver, "/all")
    assert [g["type"] for g in got] == [
        "invite.sent", "invite.accepted", "invite.sent", "invite.rejected", "namespaces",
        "variables", "variables", "variables", "variables", "ssh_keys",
    ]  # fmt: skip
    for g in got:
        assert g["body"]["namespace"]["path"] == "acme"
        Verifier(hook.secret).verify(_raw(receiver, g), g["headers"])
        expected = (
            "sha256="
            + hmac.new(hook.secret.encode(), _raw(receiver, g), hashlib.sha256).hexdigest()
        )
        assert g["headers"]["X-Djinn-CI-Signature"] == expected
        assert g["headers"]["User-Agent"] == "Djinn-CI-Hook"
        assert g["headers"]["X-Djinn-CI-Event"] == g["type"]
        assert g["headers"]["X-Djinn-CI-Hook-ID"] == str(hook.pk)
    accepted = got[1]["body"]
    assert accepted["inviter"]["name"] == "Olga" and accepted["invitee"]["name"] == "Carl"
    # sent: only the address the owner typed; answered: the invitee, who showed themselves
    assert got[2]["body"]["invitee"] == {"email": "Rita@Example.com"}
    assert got[3]["body"]["invitee"] == {"id": reject.pk, "name": "Rita",
                                         "email": "Rita@Example.com"}  # fmt: skip
    assert [g["body"]["action"] for g in got[5:]] == [
        "created",
        "created",
        "updated",
        "deleted",
        "created",
    ]
    assert got[5]["body"]["variable"]["value"] == "eu-west-1"
    assert [g["body"]["variable"]["value"] for g in got[6:9]] == ["xxxxxx"] * 3  # Djinn's mask
    assert all(g["body"]["variable"]["masked"] for g in got[6:9])
    assert got[9]["body"]["key"]["fingerprint"].startswith("SHA256:")  # Djinn's `key`
    assert "ssh_key" not in got[9]["body"]
    everything = b"".join(r.body for r in receiver.requests)
    assert b"s3cr3t-v4lue" not in everything  # a masked value is never sent
    assert b"s3cr3t-v4lue" not in json.dumps(list(Attempt.objects.values("request_body"))).encode()
    assert [g["type"] for g in received(receiver, "/variables")] == ["variables"] * 4
    assert received(receiver, "/other") == []  # another namespace's webhook hears nothing


def _raw(receiver, got: dict) -> bytes:
    [request] = [
        r for r in receiver.requests if r.headers["webhook-id"] == got["headers"]["webhook-id"]
    ]
    return request.body


def test_a_namespaces_jobs_are_build_events_with_number_tags_url_user(
    owner, colleague, stranger, receiver
):
    client = logged_in(owner)
    acme = create_namespace(client)
    join(client, acme, colleague)
    hook = add_webhook(client, acme, receiver.url + "/builds", all_events="",
                       events=["build.submitted", "build.started", "build.finished", "build.tagged"])  # fmt: skip
    add_webhook(client, acme, receiver.url + "/invites", all_events="", events=["invite.sent"])
    _, raw = ApiToken.issue(colleague, "ci")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {"input": {"prompt": "hi"}, "namespace": "acme", "tags": ["nightly"]}
    answer = api.post("/v2/echo/run", json.dumps(body), content_type="application/json")
    assert answer.status_code == 200, answer.content
    job_id = answer.json()["id"]
    api.post(
        f"/v2/echo/tag/{job_id}", json.dumps({"tags": ["urgent"]}), content_type="application/json"
    )
    runner.run(job_id)

    got = received(receiver, "/builds")
    assert [g["type"] for g in got] == [
        "build.submitted",
        "build.tagged",
        "build.started",
        "build.finished",
    ]
    final = got[-1]["body"]
    assert final["id"] == job_id and final["status"] == "passed" and final["number"] == 1
    assert final["output"] == {"prompt": "hi"} and final["tags"] == ["nightly", "urgent"]
    assert final["url"].endswith(f"/namespaces/acme/jobs/{job_id}/")
    assert final["user"]["id"] == colleague.pk and final["user"]["name"] == "Carl"
    assert final["namespace"]["path"] == "acme"
    assert final["trigger"]["type"] == "manual" and final["manifest"] == '{"prompt":"hi"}'
    tagged = got[1]["body"]
    assert [t["name"] for t in tagged["tags"]] == ["urgent"] and tagged["user"][
        "id"
    ] == colleague.pk
    Verifier(hook.secret).verify(_raw(receiver, got[-1]), got[-1]["headers"])
    assert received(receiver, "/invites") == []  # subscribed to invites only: no builds
    # the job's page shows it to members
    page = logged_in(colleague).get(f"/namespaces/acme/jobs/{job_id}/")
    assert page.status_code == 200 and b"COMPLETED" in page.content
    # a stranger may not submit into it, and learns nothing about whether it exists
    _, other = ApiToken.issue(stranger, "x")
    for path in ("acme", "nothing-here"):
        refused = Client(HTTP_AUTHORIZATION=f"Bearer {other}").post(
            "/v2/echo/run",
            json.dumps({"input": {}, "namespace": path}),
            content_type="application/json",
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == f"No namespace {path!r} that you are a member of."
    assert acme.jobs.count() == 1


# --- access control ---------------------------------------------------------------------
@pytest.fixture
def world(owner, colleague, receiver):
    """A namespace with one of everything, a collaborator, and a delivery to look at."""
    client = logged_in(owner)
    acme = create_namespace(client)
    join(client, acme, colleague)
    hook = add_webhook(client, acme, receiver.url)
    deliver_due()
    logged_in(colleague).post(f"/namespaces/{acme.path}/variables/", {"key": "A", "value": "1"})
    logged_in(colleague).post(
        f"/namespaces/{acme.path}/keys/", {"name": "k", "public_key": ED25519}
    )
    cron = {"name": "nightly", "endpoint": echo(), "every": "daily", "input": "{}"}
    logged_in(colleague).post(f"/namespaces/{acme.path}/cron/", cron)
    logged_in(colleague).post(
        f"/namespaces/{acme.path}/objects/", {"name": "cache.tgz", "file": upload()}
    )
    _, raw = ApiToken.issue(colleague, "ci")
    job = (
        Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
        .post(
            "/v2/echo/run",
            json.dumps({"input": {}, "namespace": "acme"}),
            content_type="application/json",
        )
        .json()["id"]
    )
    return {"ns": acme, "hook": hook, "delivery": Delivery.objects.filter(webhook=hook).first(),
            "variable": Variable.objects.get(), "key": SSHKey.objects.get(), "job": job,
            "cron": Cron.objects.get(), "object": Object.objects.get()}  # fmt: skip


def echo() -> int:
    return Endpoint.objects.get(name="echo").pk


def upload(content: bytes = b"bytes of the cache", name: str = "cache.tgz") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/gzip")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def pages(w: dict) -> list[tuple[str, str, dict, str]]:
    """(method, url, data, least role) for every namespace page and action."""
    ns, hook, d = w["ns"].path, w["hook"].pk, w["delivery"].pk
    var, key = w["variable"].pk, w["key"].pk
    cron, obj = w["cron"].pk, w["object"].pk
    base = f"/namespaces/{ns}"
    return [
        ("GET", f"{base}/cron/", {}, "collaborator"),
        ("GET", f"{base}/cron/{cron}/", {}, "collaborator"),
        (
            "POST",
            f"{base}/cron/{cron}/",
            {"name": "n", "endpoint": echo(), "every": "weekly", "input": "{}"},
            "collaborator",
        ),
        ("GET", f"{base}/objects/", {}, "collaborator"),
        ("GET", f"{base}/objects/{obj}/download/", {}, "collaborator"),
        ("POST", f"{base}/objects/{obj}/", {"name": "renamed.tgz"}, "collaborator"),
        ("GET", f"{base}/images/", {}, "collaborator"),
        ("POST", f"{base}/cron/{cron}/delete/", {}, "collaborator"),
        ("POST", f"{base}/objects/{obj}/delete/", {}, "collaborator"),
        ("GET", f"{base}/", {}, "viewer"),
        ("GET", f"{base}/jobs/", {}, "viewer"),
        ("GET", f"{base}/jobs/{w['job']}/", {}, "viewer"),
        ("GET", f"{base}/members/", {}, "collaborator"),
        ("GET", f"{base}/variables/", {}, "collaborator"),
        ("POST", f"{base}/variables/", {"key": "NEW", "value": "x"}, "collaborator"),
        ("GET", f"{base}/variables/{var}/", {}, "collaborator"),
        ("POST", f"{base}/variables/{var}/", {"key": "A", "value": "2"}, "collaborator"),
        ("GET", f"{base}/keys/", {}, "collaborator"),
        ("GET", f"{base}/keys/{key}/", {}, "collaborator"),
        ("POST", f"{base}/keys/{key}/", {"name": "renamed", "public_key": ED25519}, "collaborator"),
        ("POST", f"{base}/keys/{key}/delete/", {}, "collaborator"),
        ("POST", f"{base}/variables/{var}/delete/", {}, "collaborator"),
        ("GET", f"{base}/edit/", {}, "owner"),
        ("POST", f"{base}/edit/", {"description": "x", "visibility": "internal"}, "owner"),
        ("POST", f"{base}/invite/", {"who": "nobody@example.com"}, "owner"),
        ("GET", f"/namespaces/new/?parent={ns}", {}, "owner"),
        ("GET", f"{base}/webhooks/", {}, "owner"),
        ("GET", f"{base}/webhooks/new/", {}, "owner"),
        ("GET", f"{base}/webhooks/{hook}/", {}, "owner"),
        ("POST", f"{base}/webhooks/{hook}/", {"url": w["hook"].url, "all_events": "on"}, "owner"),
        ("POST", f"{base}/webhooks/{hook}/test/", {}, "owner"),
        ("GET", f"{base}/webhooks/{hook}/deliveries/{d}/", {}, "owner"),
        ("POST", f"{base}/webhooks/{hook}/deliveries/{d}/redeliver/", {}, "owner"),
        ("POST", f"{base}/members/{w['colleague_id']}/remove/", {}, "owner"),
        ("POST", f"{base}/webhooks/{hook}/delete/", {}, "owner"),
        ("POST", f"{base}/delete/", {"confirm": ns}, "owner"),
    ]


RANK = {"none": 0, "viewer": 1, "collaborator": 2, "owner": 3}


def snapshot() -> tuple:
    return (
        list(Namespace.objects.values_list("pk", "description", "visibility")),
        list(Variable.objects.values_list("pk", "key", "updated_at")),
        list(SSHKey.objects.values_list("pk", "name")),
        list(Cron.objects.values_list("pk", "name", "every")),
        list(Object.objects.values_list("pk", "name")),
        list(Webhook.objects.values_list("pk", "url", "updated_at")),
        list(Collaborator.objects.values_list("pk")),
        list(Invite.objects.values_list("pk")),
        list(Delivery.objects.values_list("pk", "status", "attempts", "manual")),
    )


@pytest.mark.parametrize(
    "who, visibility, rank",
    [
        ("stranger", "private", "none"),
        ("stranger", "internal", "viewer"),
        ("removed", "private", "none"),
        ("staff", "private", "none"),  # staff work through the admin, with its permissions
        ("collaborator", "private", "collaborator"),
        ("owner", "private", "owner"),
        ("superuser", "private", "owner"),
    ],
)
def test_every_page_and_action_is_for_its_roles_and_a_404_otherwise(
    world, owner, colleague, stranger, who, visibility, rank
):
    acme = world["ns"]
    Namespace.objects.filter(pk=acme.pk).update(visibility=visibility)
    world["colleague_id"] = colleague.pk
    users = {"owner": owner, "collaborator": colleague, "stranger": stranger,
             "staff": person("stella", is_staff=True),
             "superuser": person("root", is_staff=True, is_superuser=True)}  # fmt: skip
    if who == "removed":
        logged_in(owner).post(f"/namespaces/acme/members/{colleague.pk}/remove/")
        users["removed"] = colleague
    client = logged_in(users[who])
    for method, url, data, least in pages(world):
        before = snapshot()
        response = client.get(url) if method == "GET" else client.post(url, data)
        if RANK[rank] >= RANK[least]:
            assert response.status_code in (200, 302, 400), (who, method, url, response.status_code)
        else:
            assert response.status_code == 404, (who, method, url, response.status_code)
            assert snapshot() == before, (who, method, url)  # a refused action changed nothing
    anonymous = Client().get("/namespaces/acme/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_an_overview_lists_only_the_sub_namespaces_its_viewer_may_open(owner, colleague, stranger):
    client = logged_in(owner)
    create_namespace(client, visibility="internal")
    join(client, Namespace.objects.get(path="acme"), colleague)
    for name, description, visibility in (("plans", "Merger with Initech", "private"),
                                          ("handbook", "How we work", "internal")):  # fmt: skip
        made = client.post("/namespaces/new/?parent=acme",
                           {"name": name, "description": description, "visibility": visibility})  # fmt: skip
        assert made.status_code == 302
    seen = {who: logged_in(user).get("/namespaces/acme/").content.decode()
            for who, user in (("owner", owner), ("collaborator", colleague),
                              ("viewer", stranger))}  # fmt: skip
    for who in ("owner", "collaborator"):
        assert "acme/plans" in seen[who] and "Merger with Initech" in seen[who]
        assert "acme/handbook" in seen[who]
    assert "acme/handbook" in seen["viewer"] and "How we work" in seen["viewer"]
    assert "acme/plans" not in seen["viewer"] and "Merger with Initech" not in seen["viewer"]
    assert logged_in(stranger).get("/namespaces/acme/plans/").status_code == 404
    assert logged_in(stranger).get("/namespaces/acme/handbook/").status_code == 200


# --- bad input ----------------------------------------------------------------------------
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"


def DEEP(levels: int) -> str:  # noqa: N802 (reads as a constant in the table below)
    """JSON text of `levels` objects, each inside the one before."""
    return '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1)


BAD_INPUT = [
    ("/namespaces/new/", {"name": "a b"}, "Use letters, digits"),
    ("/namespaces/new/", {"name": "webhooks"}, "is the name of a page"),
    ("/namespaces/new/", {"name": "acme"}, "A namespace acme already exists"),
    ("/namespaces/new/", {"name": ""}, "This field is required"),
    ("/namespaces/new/", {"name": "ok", "visibility": "public"}, "Select a valid choice"),
    ("/namespaces/acme/edit/", {"description": "two\nlines", "visibility": "private"}, "line breaks"),
    ("/namespaces/acme/invite/", {"who": "olga@example.com"}, "The owner is already a member"),
    ("/namespaces/acme/invite/", {"who": "carl@example.com"}, "already a collaborator"),
    ("/namespaces/acme/invite/", {"who": "sam"}, "Enter a valid email address"),  # no user names
    ("/namespaces/acme/invite/", {"who": "Sam"}, "Enter a valid email address"),  # nor names
    ("/namespaces/acme/variables/", {"key": "1BAD", "value": "x"}, "A key is letters"),
    ("/namespaces/acme/variables/", {"key": "A", "value": "x"}, "already has a variable"),
    ("/namespaces/acme/variables/", {"key": "B", "value": ""}, "Give the variable a value"),
    ("/namespaces/acme/variables/", {"key": "B", "value": "********"}, "not the mask"),
    ("/namespaces/acme/keys/", {"name": "new", "public_key": PRIVATE_KEY}, "This is a private key"),
    ("/namespaces/acme/keys/", {"name": "new", "public_key": "hello"}, "Paste an OpenSSH public key"),
    ("/namespaces/acme/keys/", {"name": "new", "public_key": "ssh-ed25519 AAAAnotakey"}, "does not decode"),
    ("/namespaces/acme/keys/", {"name": "k", "public_key": ED25519}, "already has an SSH key"),
    ("/namespaces/acme/keys/", {"name": "long", "public_key": ED25519 + " " + "c" * 300_000},
     "a public key line is at most 16384"),
    ("/namespaces/acme/webhooks/new/", {"url": "ftp://example.com/x", "all_events": "on"}, "http"),
    ("/namespaces/acme/webhooks/new/", {"url": "http://10.1.2.3/hook", "all_events": "on"}, "not allowed"),
    ("/namespaces/acme/webhooks/new/", {"url": "http://10.1.2.3/hook", "all_events": "on"},
     "WEBHOOK_USER_ALLOWED_NETWORKS in .env"),
    ("/namespaces/acme/webhooks/new/", {"url": "https://example.com/h"}, "Pick at least one event"),
    ("/namespaces/acme/webhooks/new/", {"url": "https://example.com/h", "events": ["job.finished"]},
     "Select a valid choice"),
    ("/namespaces/acme/webhooks/new/", {"url": "https://example.com/h", "all_events": "on",
                                        "pasted_secret": "hunter2"}, "16 to 256 characters"),
    ("/namespaces/acme/webhooks/new/", {"url": "{hook_url}", "all_events": "on"}, "already has a webhook"),
    ("/namespaces/acme/webhooks/new/", {"url": "https://example.com/h", "all_events": "on",
                                        "payload_filter": '{"path": "a", "equals": 1}'}, "unknown operator"),
    ("/namespaces/acme/webhooks/new/", {"url": "https://example.com/h", "all_events": "on",
                                        "payload_filter": "{nope"}, "not valid JSON"),
    ("/namespaces/acme/cron/", {"name": "c", "endpoint": "{echo}", "every": "custom", "expression": "61 * * * *"},
     "is not a cron expression"),
    ("/namespaces/acme/cron/", {"name": "c", "endpoint": "{echo}", "every": "custom", "expression": "0 0 * * * *"},
     "is not a cron expression"),
    ("/namespaces/acme/cron/", {"name": "c", "endpoint": "{echo}", "every": "custom"}, "Give a cron expression"),
    ("/namespaces/acme/cron/", {"name": "c", "endpoint": "{echo}", "every": "daily", "expression": "* * * * *"},
     "leave it blank"),
    ("/namespaces/acme/cron/", {"name": "c", "endpoint": "{echo}", "every": "daily", "input": "[1]"}, "JSON object"),
    ("/namespaces/acme/cron/", {"name": "c", "endpoint": "{echo}", "every": "daily", "input": "{nope"}, "Enter a valid JSON"),
    ("/namespaces/acme/cron/", {"name": "c", "endpoint": "99999", "every": "daily"}, "Select a valid choice"),
    ("/namespaces/acme/cron/", {"name": "c", "endpoint": "{echo}", "every": "daily", "input": DEEP(480)},
     "more than 100 levels deep"),
    ("/namespaces/acme/cron/", {"name": "c", "endpoint": "{echo}", "every": "daily", "input": DEEP(5000)},
     "more than 100 levels deep"),
    ("/namespaces/acme/webhooks/new/", {"url": "https://example.com/h", "all_events": "on",
                                        "payload_filter": DEEP(5000)}, "The filter nests too deeply"),
    ("/namespaces/acme/webhooks/new/", {"url": "https://example.com/h", "all_events": "on",
                                        "payload_filter": '{"path": "a", "eq": ' + DEEP(480) + "}"},
     "the values they compare with included"),
    ("/namespaces/acme/cron/", {"name": "nightly", "endpoint": "{echo}", "every": "daily"}, "already has a cron job"),
    ("/namespaces/acme/objects/", {"name": "big", "file": "{big}"}, "the limit is"),
    ("/namespaces/acme/objects/", {"name": "empty", "file": "{empty}"}, "The submitted file is empty"),
    ("/namespaces/acme/objects/", {"name": "a/b", "file": "{small}"}, "may not contain slashes"),
    ("/namespaces/acme/objects/", {"name": "nofile"}, "This field is required"),
    ("/namespaces/acme/images/", {"name": "cache.tgz", "file": "{small}"}, None),
]  # fmt: skip


def test_staff_get_a_form_error_for_a_deep_cron_input_in_the_admin(world, admin_client):
    cron = world["cron"]
    url = f"/admin/namespaces/cron/{cron.pk}/change/"
    data = {"name": cron.name, "endpoint": cron.endpoint_id, "every": cron.every,
            "expression": cron.expression}  # fmt: skip
    for deep in (DEEP(101), DEEP(5000)):
        response = admin_client.post(url, {**data, "input": deep})
        assert response.status_code == 200
        assert "more than 100 levels deep" in response.content.decode()
    cron.refresh_from_db()
    assert cron.input == {}
    assert admin_client.post(url, {**data, "input": DEEP(100)}).status_code == 302
    cron.refresh_from_db()
    assert cron.input == json.loads(DEEP(100))


@pytest.mark.parametrize("url, data, message", BAD_INPUT)
def test_bad_input_gets_a_field_error_and_saves_nothing(world, owner, settings, url, data, message):
    if message is None:  # the same name as another kind's file is fine: not bad input
        assert logged_in(owner).post(url, {**data, "file": upload()}).status_code == 302
        return
    settings.NAMESPACE_FILE_LIMIT = 1024
    fills = {"{big}": upload(b"x" * 1025), "{empty}": upload(b""), "{small}": upload(),
             "{hook_url}": world["hook"].url, "{echo}": str(echo())}  # fmt: skip
    data = {k: fills.get(v, v) if isinstance(v, str) else v for k, v in data.items()}
    before = snapshot()
    response = logged_in(owner).post(url, data)
    assert response.status_code == 400, response.status_code
    page = response.content.decode()
    assert message in page, page[-3000:]
    assert "Nothing was saved" in page  # the banner, above the fold
    assert snapshot() == before


def test_a_masked_value_is_write_only_and_unmasking_needs_a_new_value(world, colleague):
    client = logged_in(colleague)
    client.post(
        "/namespaces/acme/variables/", {"key": "TOKEN", "value": "s3cr3t-v4lue", "masked": "on"}
    )
    token = Variable.objects.get(key="TOKEN")
    for page in ("/namespaces/acme/variables/", f"/namespaces/acme/variables/{token.pk}/"):
        assert b"s3cr3t-v4lue" not in client.get(page).content
    refused = client.post(f"/namespaces/acme/variables/{token.pk}/", {"key": "TOKEN", "value": ""})
    assert refused.status_code == 400 and b"give a new value to unmask" in refused.content
    client.post(
        f"/namespaces/acme/variables/{token.pk}/", {"key": "TOKEN", "value": "", "masked": "on"}
    )
    assert Variable.objects.get(pk=token.pk).value == "s3cr3t-v4lue"  # blank kept it
    admin = logged_in(person("root", is_staff=True, is_superuser=True))
    assert (
        b"s3cr3t-v4lue" not in admin.get(f"/admin/namespaces/variable/{token.pk}/change/").content
    )
    assert b"s3cr3t-v4lue" not in admin.get("/admin/namespaces/variable/").content


def test_staff_who_may_change_variables_cannot_unmask_one_without_its_value(world, colleague,
                                                                            receiver):  # fmt: skip
    from django.contrib.auth.models import Permission

    logged_in(colleague).post(
        "/namespaces/acme/variables/", {"key": "TOKEN", "value": "s3cr3t-v4lue", "masked": "on"}
    )
    token = Variable.objects.get(key="TOKEN")
    staff = person("vera", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(
        codename__in=["view_variable", "change_variable"]))  # fmt: skip
    admin, url = logged_in(staff), f"/admin/namespaces/variable/{token.pk}/change/"
    form = {"namespace": token.namespace_id, "key": "TOKEN", "value": ""}  # masked unticked
    refused = admin.post(url, form)
    assert refused.status_code == 200 and b"give a new value to unmask" in refused.content
    token.refresh_from_db()
    assert token.masked and token.value == "s3cr3t-v4lue"
    pages = [admin.get(url), admin.get("/admin/namespaces/variable/"),
             logged_in(colleague).get("/namespaces/acme/variables/")]  # fmt: skip
    assert all(b"s3cr3t-v4lue" not in page.content for page in pages)
    assert admin.post(url, {**form, "value": "n3w-v4lue"}).status_code == 302  # given again
    token.refresh_from_db()
    assert not token.masked and token.value == "n3w-v4lue"
    sent = [g["body"] for g in received(receiver, "/hook") if g["type"] == "variables"]
    assert "s3cr3t-v4lue" not in json.dumps(sent)
    assert sent[-1]["variable"]["value"] == "n3w-v4lue" and not sent[-1]["variable"]["masked"]


# --- the owner's webhook pages ----------------------------------------------------------
def test_the_owner_sees_deliveries_redelivers_with_the_same_id_and_tests(owner, receiver):
    client = logged_in(owner)
    acme = create_namespace(client)
    hook = add_webhook(client, acme, receiver.url, djinn_headers="on")
    shown = client.get(f"/namespaces/acme/webhooks/{hook.pk}/").content.decode()
    assert hook.secret in shown  # once, right after creating it
    assert hook.secret not in client.get(f"/namespaces/acme/webhooks/{hook.pk}/").content.decode()
    client.post("/namespaces/acme/variables/", {"key": "A", "value": "1"})
    deliver_due()
    [delivery] = Delivery.objects.filter(webhook=hook)
    listing = client.get("/namespaces/acme/webhooks/").content.decode()
    assert "succeeded" in listing and "200" in listing
    recent = client.get(f"/namespaces/acme/webhooks/{hook.pk}/").content.decode()
    duration = r'<td data-label="Duration">\d+ ms</td>\s*<td data-label="Attempts">1</td>'
    assert re.search(duration, recent)  # duration and attempts
    page = client.get(
        f"/namespaces/acme/webhooks/{hook.pk}/deliveries/{delivery.pk}/"
    ).content.decode()
    assert (
        "X-Djinn-CI-Signature" in page
        and "HTTP 200" in page
        and "&quot;key&quot;: &quot;A&quot;" in page
    )
    assert hook.secret not in page
    assert (
        client.post(
            f"/namespaces/acme/webhooks/{hook.pk}/deliveries/{delivery.pk}/redeliver/"
        ).status_code
        == 302
    )
    deliver_due()
    ids = [
        r.headers["webhook-id"]
        for r in receiver.requests
        if r.headers["X-Webhookhub-Event"] == "variables"
    ]
    assert ids == [str(delivery.pk)] * 2  # the same webhook-id: receivers deduplicate on it
    client.post(f"/namespaces/acme/webhooks/{hook.pk}/test/")
    result = client.get(f"/namespaces/acme/webhooks/{hook.pk}/").content.decode()
    assert 'id="test-result"' in result and "Delivered" in result and "HTTP 200" in result


def test_a_blank_secret_keeps_it_and_remove_clears_it(owner, receiver):
    client = logged_in(owner)
    hook = add_webhook(client, create_namespace(client), receiver.url)
    secret = hook.secret
    edit = {"url": receiver.url, "all_events": "on", "active": "on", "verify_tls": "on"}
    client.post(f"/namespaces/acme/webhooks/{hook.pk}/", edit)
    assert Webhook.objects.get(pk=hook.pk).secret == secret
    client.post(f"/namespaces/acme/webhooks/{hook.pk}/", {**edit, "secret_action": "remove"})
    hook.refresh_from_db()
    assert hook.secret == ""
    client.post("/namespaces/acme/variables/", {"key": "A", "value": "1"})
    deliver_due()
    [request] = receiver.requests
    assert "webhook-signature" not in request.headers  # unsigned, as asked


def test_deleting_a_namespace_deletes_its_webhooks_and_sub_namespaces(owner, receiver):
    client = logged_in(owner)
    acme = create_namespace(client)
    add_webhook(client, acme, receiver.url)
    assert (
        client.post(
            "/namespaces/new/?parent=acme", {"name": "ci", "visibility": "private"}
        ).status_code
        == 302
    )
    child = Namespace.objects.get(path="acme/ci")
    assert child.root == acme and child.owner == owner
    refused = client.post("/namespaces/acme/delete/", {"confirm": "wrong"})
    assert refused.status_code == 302 and Namespace.objects.count() == 2
    client.post("/namespaces/acme/delete/", {"confirm": "acme"})
    assert not Namespace.objects.exists() and not Webhook.objects.filter(scope="namespace").exists()


def test_sub_namespaces_share_the_roots_members(owner, colleague):
    client = logged_in(owner)
    create_namespace(client)
    client.post("/namespaces/new/?parent=acme", {"name": "ci", "visibility": "private"})
    join(client, Namespace.objects.get(path="acme"), colleague)
    work = logged_in(colleague)
    assert work.get("/namespaces/acme/ci/variables/").status_code == 200
    assert (
        work.post("/namespaces/acme/ci/variables/", {"key": "X", "value": "1"}).status_code == 302
    )
    assert work.get("/namespaces/acme/ci/webhooks/").status_code == 404  # the owner's
    listed = work.get("/namespaces/").content.decode()
    assert "acme/ci" in listed


# --- cron, images, objects --------------------------------------------------------------
def test_a_cron_job_has_a_django_q_schedule_and_submits_into_its_namespace(
    owner, colleague, receiver
):
    from django_q.models import Schedule

    from jobs.scheduled import run_cron

    client = logged_in(owner)
    acme = create_namespace(client)
    join(client, acme, colleague)
    add_webhook(
        client, acme, receiver.url + "/cron", all_events="", events=["cron", "build.submitted"]
    )
    work = logged_in(colleague)
    made = work.post("/namespaces/acme/cron/", {"name": "nightly", "endpoint": echo(), "every": "custom",
                                                 "expression": "30  2 * * 1-5", "input": '{"prompt": "hi"}'})  # fmt: skip
    assert made.status_code == 302
    cron = Cron.objects.get()
    schedule = Schedule.objects.get(pk=cron.schedule_id)
    assert schedule.func == "jobs.scheduled.run_cron" and schedule.cron == "30 2 * * 1-5"
    assert schedule.schedule_type == Schedule.CRON and schedule.next_run > cron.created_at
    assert (schedule.next_run.hour, schedule.next_run.minute) == (2, 30)  # TIME_ZONE is UTC here
    assert "Next run" in work.get(f"/namespaces/acme/cron/{cron.pk}/").content.decode()
    work.post(f"/namespaces/acme/cron/{cron.pk}/", {"name": "nightly", "endpoint": echo(), "every": "monthly",
                                                    "input": '{"prompt": "hi"}'})  # fmt: skip
    schedule.refresh_from_db()
    assert schedule.cron == "0 0 1 * *" and schedule.next_run.day == 1

    job_id = run_cron(str(cron.pk))  # what the schedule calls, with its args
    job = Job.objects.get(pk=job_id)
    assert job.namespace == acme and job.user == colleague and job.input == {"prompt": "hi"}
    logged_in(owner).post(f"/namespaces/acme/members/{colleague.pk}/remove/")
    assert run_cron(cron.pk) is None  # a former member's input runs as nobody, the owner too
    work_again = logged_in(owner)
    work_again.post(f"/namespaces/acme/cron/{cron.pk}/delete/")
    assert not Schedule.objects.filter(pk=schedule.pk).exists() and run_cron(cron.pk) is None
    got = received(receiver, "/cron")
    assert [(g["type"], g["body"].get("action")) for g in got] == [
        ("cron", "created"), ("cron", "updated"), ("build.submitted", None), ("cron", "deleted"),
    ]  # fmt: skip
    assert (
        got[0]["body"]["cron"]["expression"] == "30 2 * * 1-5"
        and got[0]["body"]["cron"]["next_run"]
    )


def test_a_cron_job_runs_as_whoever_last_saved_it_never_with_anothers_input(
    owner, colleague, receiver, admin_client
):
    """A collaborator who edits the owner's cron job runs it from then on, as themselves;
    the owner's name never carries input they did not write (nor does staff's edit in
    the admin carry the member's name)."""
    from jobs.scheduled import run_cron

    client = logged_in(owner)
    acme = create_namespace(client)
    join(client, acme, colleague)
    add_webhook(
        client, acme, receiver.url + "/runs", all_events="", events=["cron", "build.submitted"]
    )
    fields = {"name": "nightly", "endpoint": echo(), "every": "daily"}
    assert (
        client.post("/namespaces/acme/cron/", {**fields, "input": '{"by": "olga"}'}).status_code
        == 302
    )
    cron = Cron.objects.get()
    assert Job.objects.get(pk=run_cron(cron.pk)).user == owner
    edited = logged_in(colleague).post(f"/namespaces/acme/cron/{cron.pk}/",
                                       {**fields, "input": '{"by": "carl"}'})  # fmt: skip
    assert edited.status_code == 302
    job = Job.objects.get(pk=run_cron(cron.pk))
    assert (job.user, job.input) == (colleague, {"by": "carl"})
    staff = admin_client.post(f"/admin/namespaces/cron/{cron.pk}/change/",
                              {**fields, "input": '{"by": "staff"}'})  # fmt: skip
    assert staff.status_code == 302
    job = Job.objects.get(pk=run_cron(cron.pk))
    assert job.user.is_superuser and job.input == {"by": "staff"}  # a superuser owns it all
    got = received(receiver, "/runs")
    submitted = [(g["body"]["user"]["id"], g["body"]["manifest"]) for g in got
                 if g["type"] == "build.submitted"]  # fmt: skip
    assert submitted[:2] == [(owner.pk, '{"by":"olga"}'), (colleague.pk, '{"by":"carl"}')]
    updated = [
        g["body"]["cron"]["author"]["id"] for g in got if g["body"].get("action") == "updated"
    ]
    assert updated == [colleague.pk, job.user.pk]  # each event says who runs it now


def test_files_are_stored_downloaded_by_members_only_and_removed_with_their_row(
    owner, colleague, stranger, receiver, media
):
    client = logged_in(owner)
    acme = create_namespace(client, visibility="internal")
    join(client, acme, colleague)
    add_webhook(client, acme, receiver.url + "/files", all_events="", events=["images", "objects"])
    work = logged_in(colleague)
    assert (
        work.post(
            "/namespaces/acme/images/", {"name": "debian.qcow2", "file": upload(b"QFI\xfb disk")}
        ).status_code
        == 302
    )
    image = Image.objects.get()
    stored = media / image.file.name
    assert (
        stored.read_bytes() == b"QFI\xfb disk" and "debian" not in image.file.name
    )  # a random name
    download = work.get(f"/namespaces/acme/images/{image.pk}/download/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"QFI\xfb disk"
    assert (
        download["Content-Disposition"].startswith("attachment")
        and "debian.qcow2" in download["Content-Disposition"]
    )
    assert (
        logged_in(stranger).get(f"/namespaces/acme/images/{image.pk}/download/").status_code == 404
    )  # a viewer
    assert (
        logged_in(stranger).get("/namespaces/acme/").status_code == 200
    )  # who may see the overview
    work.post(f"/namespaces/acme/images/{image.pk}/", {"name": "debian-12.qcow2"})
    work.post(f"/namespaces/acme/images/{image.pk}/delete/")
    assert not Image.objects.exists() and not stored.exists()
    got = received(receiver, "/files")
    assert [(g["type"], g["body"]["action"], g["body"]["image"]["name"]) for g in got] == [
        ("images", "created", "debian.qcow2"), ("images", "updated", "debian-12.qcow2"),
        ("images", "deleted", "debian-12.qcow2"),
    ]  # fmt: skip
    assert got[0]["body"]["image"]["size"] == 9


def test_staff_manage_namespace_webhooks_in_the_admin_by_path(owner, receiver):
    from django.urls import reverse

    from tests.test_admin import form

    client = logged_in(owner)
    acme = create_namespace(client)
    client.post("/namespaces/new/?parent=acme", {"name": "ci", "visibility": "private"})
    child = Namespace.objects.get(path="acme/ci")
    admin = logged_in(person("root", is_staff=True, is_superuser=True))
    add = reverse("admin:hooks_webhook_add")
    data = form(scope="namespace", namespace="acme/ci", url=receiver.url, event_types=["variables"])
    refused = admin.post(add, {**data, "namespace": "acme/nope"})
    assert (
        refused.status_code == 200
        and "No namespace &#x27;acme/nope&#x27;" in refused.content.decode()
    )
    assert admin.post(add, data).status_code == 302
    hook = Webhook.objects.get(scope="namespace")
    assert hook.namespace == child.key  # stored by id: a later rename of a path cannot detach it
    assert "acme/ci" in admin.get(reverse("admin:hooks_webhook_changelist")).content.decode()
    logged_in(owner).post("/namespaces/acme/ci/variables/", {"key": "A", "value": "1"})
    assert [g["type"] for g in received(receiver, "")] == ["variables"]
    assert acme.key != child.key


def test_an_owner_filters_a_webhooks_events_and_previews_the_filter(owner, receiver):
    client = logged_in(owner)
    namespace = create_namespace(client)
    only_big = '{"path": "variable.key", "in": ["BIG", "HUGE"]}'
    hook = add_webhook(client, namespace, receiver.url, payload_filter=only_big)
    assert hook.payload_filter == {"path": "variable.key", "in": ["BIG", "HUGE"]}
    for key in ("SMALL", "BIG"):
        response = client.post(
            f"/namespaces/{namespace.path}/variables/", {"key": key, "value": "1"}
        )
        assert response.status_code == 302
    got = received(receiver, "/hook")
    assert [g["body"]["variable"]["key"] for g in got] == ["BIG"]
    page = client.get(f"/namespaces/{namespace.path}/webhooks/{hook.pk}/").content.decode()
    assert 'id="filter-preview"' in page and "✓" in page and "✗" in page
    assert "variable.key" in page  # the edit form shows the filter as it is
    response = client.post(f"/namespaces/{namespace.path}/webhooks/{hook.pk}/",
                           {"url": hook.url, "all_events": "on", "active": "on", "payload_filter": ""})  # fmt: skip
    assert response.status_code == 302
    hook.refresh_from_db()
    assert hook.payload_filter is None


def _neutral(response, who: str) -> str:
    """A page with the address typed and the per-response CSRF token taken out."""
    page = response.content.decode().replace(who, "WHO")
    return re.sub(r'(value|data-csrf)="[A-Za-z0-9]{64}"', "", page)


def test_an_invite_answers_the_same_whether_or_not_the_address_has_an_account(
    world, owner, stranger, receiver
):
    """Its page, its form errors and its invite.sent event, to the inviter's own
    webhook, are the same for an address with an account and one without; the event
    carries only the address as typed (Sam's id and name stay unknown)."""
    client = logged_in(owner)
    Invite.objects.all().delete()
    sent, errors = [], []
    for who in ("nobody@example.com", "Sam@Example.com"):
        page = client.post("/namespaces/acme/invite/", {"who": who}, follow=True)
        sent.append(_neutral(page, who).split('class="messages"', 1)[1].split("</ul>", 1)[0])
    for who in ("nobody@example.com", "Sam@Example.com"):
        again = client.post("/namespaces/acme/invite/", {"who": who.upper()})
        assert again.status_code == 400
        errors.append(_neutral(again, who.upper()))
    assert sent[0] == sent[1] and "they are invited" in sent[0]
    assert errors[0] == errors[1] and "has already been invited" in errors[0]
    members = client.get("/namespaces/acme/members/").content.decode()
    assert "Waiting for: Sam@Example.com, nobody@example.com" in members
    assert "Sam" not in members.replace("Sam@Example.com", "")
    invites = [g["body"] for g in received(receiver, "/hook") if g["type"] == "invite.sent"]
    assert [i["invitee"] for i in invites] == [{"email": "nobody@example.com"},
                                               {"email": "Sam@Example.com"}]  # fmt: skip
    assert invites[0] | {"invitee": None} == invites[1] | {"invitee": None}
    [sam] = Invite.objects.filter(invitee=stranger)
    assert sam.email == "Sam@Example.com"  # Sam sees it on their page and may accept it
    assert "acme" in logged_in(stranger).get("/namespaces/").content.decode()
    assert logged_in(stranger).post(f"/namespaces/invites/{sam.pk}/accept/").status_code == 302
    assert Collaborator.objects.filter(namespace=world["ns"], user=stranger).exists()


def test_invites_are_limited_per_user_and_hour_over_every_namespace(
    owner, stranger, settings, receiver
):
    """Rejected and invited again, or one invite from each of many namespaces: each
    invite sent counts, and past the limit none is sent, whatever the address."""
    settings.INVITE_LIMIT_PER_HOUR = 4
    client = logged_in(owner)
    spaces = [create_namespace(client, f"spam{n}") for n in range(3)]
    for _ in range(2):  # invite, reject, invite again
        assert client.post("/namespaces/spam0/invite/", {"who": stranger.email}).status_code == 302
        pending = Invite.objects.get(invitee=stranger)
        logged_in(stranger).post(f"/namespaces/invites/{pending.pk}/reject/")
    for space in spaces[1:]:
        assert (
            client.post(f"/namespaces/{space.path}/invite/", {"who": stranger.email}).status_code
            == 302
        )
    for who in (stranger.email, "nobody@example.com"):  # the fifth, either address
        refused = client.post("/namespaces/spam0/invite/", {"who": who})
        assert refused.status_code == 400
        assert "You have sent 4 invites in the last hour" in refused.content.decode()
    assert Invite.objects.count() == 2 and SentInvite.objects.count() == 4
    assert not Invite.objects.filter(email="nobody@example.com").exists()
    SentInvite.objects.update(sent_at=timezone.now() - timedelta(hours=1, seconds=1))
    assert (
        client.post("/namespaces/spam0/invite/", {"who": "nobody@example.com"}).status_code == 302
    )
    assert SentInvite.objects.count() == 1  # the hour's older ones are gone

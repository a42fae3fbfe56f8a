"""Namespaces (Djinn CI): members, invites, resources, their events, and the owner's
webhook pages, driven through the pages as people use them, with a real receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from standardwebhooks.webhooks import Webhook as Verifier

from accounts.models import ApiToken
from hooks.models import Attempt, Delivery, Webhook
from hooks.worker.attempt import deliver_due
from jobs import runner
from namespaces.models import Invite, Namespace, Variable

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
    client.post(f"/namespaces/{acme.path}/invite/", {"who": "rita"})  # by user name
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
    assert [g["body"]["action"] for g in got[5:]] == [
        "created",
        "created",
        "updated",
        "deleted",
        "created",
    ]
    assert got[5]["body"]["variable"]["value"] == "eu-west-1"
    assert got[9]["body"]["ssh_key"]["fingerprint"].startswith("SHA256:")
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
    assert final["id"] == job_id and final["status"] == "COMPLETED" and final["number"] == 1
    assert final["output"] == {"prompt": "hi"} and final["tags"] == ["nightly", "urgent"]
    assert final["url"].endswith(f"/namespaces/acme/jobs/{job_id}/")
    assert (
        final["user"] == {"id": colleague.pk, "name": "Carl"}
        and final["namespace"]["path"] == "acme"
    )
    assert got[1]["body"]["tag"] == "urgent"
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

"""Redirects: a failure by default, followed for a webhook that chooses to (at most 5,
each hop through the SSRF guard), as SwarmUI's .NET client and Djinn's Go client follow
them; every hop in the history. Receivers are real HTTP servers on 127.0.0.x."""

from __future__ import annotations

import ssl

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from hooks import emit, slots
from hooks.models import Delivery, Scope, Webhook
from hooks.outgoing import transport
from hooks.tools.configure import new_webhook
from hooks.tools.receiver import Receiver, Reply
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook, verify

pytestmark = pytest.mark.django_db


def redirecting(hops: dict[str, tuple[int, str]]):
    """A responder: a request for a path in `hops` is redirected (status, Location);
    any other path is answered 200."""

    def respond(request):
        if request.path in hops:
            status, where = hops[request.path]
            return Reply(status, {"Location": where}, b"moved")
        return Reply(200, {}, b"ok")

    return respond


def delivered(webhook: Webhook) -> Delivery:
    emit(TEST_EVENT, {"n": 1})
    assert deliver_due() == 1
    return Delivery.objects.get(webhook=webhook)


@pytest.fixture
def other_host():
    """A receiver on another loopback address: another host to the hub."""
    with Receiver(host="127.0.0.2") as r:
        yield r


# --- not followed -------------------------------------------------------------------------
def test_a_redirect_is_a_failure_that_says_where_it_points_by_default(receiver, other_host):
    receiver.respond = redirecting({"/hook": (301, other_host.url)})
    webhook = make_webhook(receiver.url)
    delivery = delivered(webhook)
    attempt = delivery.attempt_set.get()
    assert delivery.status == "pending" and attempt.response_status == 301  # retried
    assert other_host.url in attempt.error and "does not follow redirects" in attempt.error
    assert "Follow redirects" in attempt.error and attempt.hops is None
    assert other_host.requests == []


# --- followed -----------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303])
def test_301_302_303_turn_the_post_into_a_get_without_its_body(receiver, status):
    receiver.respond = redirecting({"/hook": (status, "/moved")})
    webhook = make_webhook(receiver.url, follow_redirects=True)
    delivery = delivered(webhook)
    first, second = receiver.requests
    assert (first.method, first.path, second.method, second.path) == (
        "POST",
        "/hook",
        "GET",
        "/moved",
    )
    assert second.body == b"" and "Content-Length" not in second.headers
    assert "Content-Type" not in second.headers
    assert second.headers["webhook-id"] == str(delivery.pk)  # the signature headers stay
    assert delivery.status == "succeeded"
    moved = receiver.url.replace("/hook", "/moved")
    assert delivery.attempt_set.get().hops == [
        {"method": "POST", "url": receiver.url, "status": status},
        {"method": "GET", "url": moved, "status": 200, "left_out": ["Content-Type"]},
    ]


@pytest.mark.parametrize("status", [307, 308])
def test_307_308_send_the_same_post_again_and_its_signature_verifies(receiver, other_host, status):
    receiver.respond = redirecting({"/hook": (status, other_host.url)})
    webhook = make_webhook(receiver.url, follow_redirects=True)
    delivery = delivered(webhook)
    [first], [final] = receiver.requests, other_host.requests
    assert final.method == "POST" and final.body == first.body
    assert final.headers["Host"] == f"127.0.0.2:{other_host.port}"
    assert verify(webhook, final) == {"n": 1}  # standardwebhooks, at the final receiver
    assert delivery.status == "succeeded"
    attempt = delivery.attempt_set.get()
    assert [(h["method"], h["url"], h["status"]) for h in attempt.hops] == [
        ("POST", receiver.url, status), ("POST", other_host.url, 200),
    ]  # fmt: skip
    assert attempt.url == receiver.url and attempt.response_status == 200


def test_credentials_stay_on_the_first_host_and_do_not_come_back(receiver, other_host):
    """Go's rule: Authorization (basic auth) goes to the same host (any port) and its
    subdomains; once a hop went elsewhere, no later hop carries it again."""
    with Receiver() as same_host:  # 127.0.0.1, another port
        receiver.respond = redirecting({"/hook": (307, same_host.url)})
        same_host.respond = redirecting({"/hook": (307, other_host.url)})
        other_host.respond = redirecting({"/hook": (307, receiver.url.replace("/hook", "/back"))})
        webhook = make_webhook(receiver.url, follow_redirects=True, basic_auth_username="ci",
                               basic_auth_password="pw-secret")  # fmt: skip
        delivery = delivered(webhook)
        auth = [r.headers.get("Authorization") for r in
                (*receiver.requests[:1], *same_host.requests, *other_host.requests,
                 *receiver.requests[1:])]  # fmt: skip
    assert auth[:2] == ["Basic Y2k6cHctc2VjcmV0"] * 2 and auth[2:] == [None, None]
    assert delivery.status == "succeeded"
    hops = delivery.attempt_set.get().hops
    assert [h.get("left_out") for h in hops] == [None, None, ["Authorization"], ["Authorization"]]


@pytest.mark.parametrize(("redirects", "status"), [(5, "succeeded"), (6, "pending")])
def test_five_redirects_are_followed_and_a_sixth_is_refused(receiver, redirects, status):
    chain = {"/hook": (307, "/r1")} | {f"/r{n}": (307, f"/r{n + 1}") for n in range(1, redirects)}
    receiver.respond = redirecting(chain)
    webhook = make_webhook(receiver.url, follow_redirects=True)
    delivery = delivered(webhook)
    attempt = delivery.attempt_set.get()
    assert delivery.status == status and len(receiver.requests) == len(attempt.hops) == 6
    if redirects == 6:
        assert attempt.response_status == 307
        assert attempt.error.startswith("Stopped after 5 redirects") and "/r6" in attempt.error


def test_a_redirect_to_an_address_the_guard_refuses_is_not_followed(receiver, other_host, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # 127.0.0.2 is refused, as any loopback
    receiver.respond = redirecting({"/hook": (307, other_host.url)})
    webhook = make_webhook(receiver.url, follow_redirects=True)
    delivery = delivered(webhook)
    attempt = delivery.attempt_set.get()
    assert other_host.requests == []  # no packet reached it
    assert attempt.error.startswith(f"Redirect 1 to {other_host.url}: Refused '127.0.0.2'")
    assert "SSRF guard" in attempt.error and attempt.response_status is None
    assert attempt.hops[-1] == {"method": "POST", "url": other_host.url, "status": None}
    assert delivery.status == "pending"


def test_a_redirect_to_a_url_that_is_not_http_is_refused(receiver):
    receiver.respond = redirecting({"/hook": (302, "ftp://files.example.com/drop")})
    delivery = delivered(make_webhook(receiver.url, follow_redirects=True))
    error = delivery.attempt_set.get().error
    assert "ftp://files.example.com/drop" in error and "Only http and https" in error


# --- http and https -----------------------------------------------------------------------
@pytest.fixture
def tls_receiver():
    import trustme

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    transport.close_pools()
    with Receiver(tls=context) as r:
        yield r
    transport.close_pools()


def test_a_redirect_from_http_to_https_is_followed(receiver, tls_receiver):
    receiver.respond = redirecting({"/hook": (308, tls_receiver.url)})
    webhook = make_webhook(receiver.url, follow_redirects=True, verify_tls=False)
    assert delivered(webhook).status == "succeeded"
    assert verify(webhook, tls_receiver.requests[0]) == {"n": 1}


def test_a_redirect_from_https_to_http_is_not_followed(receiver, tls_receiver):
    tls_receiver.respond = redirecting({"/hook": (308, receiver.url)})
    webhook = make_webhook(tls_receiver.url, follow_redirects=True, verify_tls=False)
    error = delivered(webhook).attempt_set.get().error
    assert "from https to http" in error and "unencrypted" in error
    assert receiver.requests == []


# --- who follows by default ---------------------------------------------------------------
def test_namespace_webhooks_and_swarmui_hooks_follow_by_default_others_do_not():
    assert new_webhook(Scope.NAMESPACE, namespace="1").follow_redirects
    assert not new_webhook(Scope.SERVER).follow_redirects
    user = get_user_model().objects.create_user("u", "u@example.com", "pw")
    assert not new_webhook(Scope.USER, owner=user).follow_redirects
    assert slots.save("queue_start", "https://hooks.example.com/start").follow_redirects
    assert slots.save("every_job", "https://hooks.example.com/every").follow_redirects
    # Open WebUI's own client does not follow them by default (AIOHTTP_CLIENT_ALLOW_REDIRECTS).
    assert not slots.save("signup", "https://hooks.example.com/signup").follow_redirects


def test_the_api_makes_a_namespace_webhook_that_follows_unless_told_otherwise():
    from accounts.models import ApiToken
    from namespaces.models import Namespace

    owner = get_user_model().objects.create_user("olga", "olga@example.com", "pw")
    Namespace.objects.create(name="acme", path="acme", owner=owner)
    token = ApiToken.issue(owner, "api")[1]

    def create(**extra) -> dict:
        body = {"namespace": "acme", "url": f"https://h{len(extra)}.example.com/", **extra}
        answer = Client().post("/api/v1/webhooks", body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
        assert answer.status_code == 201, answer.content
        return answer.json()

    assert create()["follow_redirects"] is True
    assert create(follow_redirects=False)["follow_redirects"] is False


# --- the history shows every hop ------------------------------------------------------------
def test_every_hop_is_shown_on_the_delivery_pages_and_in_the_api(receiver, other_host):
    from accounts.models import ApiToken
    from namespaces.models import Namespace

    owner = get_user_model().objects.create_user("olga", "olga@example.com", "pw")
    acme = Namespace.objects.create(name="acme", path="acme", owner=owner)
    client = Client()
    client.force_login(owner)
    form = client.get("/namespaces/acme/webhooks/new/").content.decode()
    assert 'id="id_follow_redirects" checked' in form  # on for a new namespace webhook
    data = {"url": receiver.url, "all_events": "on", "active": "on", "verify_tls": "on",
            "follow_redirects": "on"}  # fmt: skip
    assert client.post("/namespaces/acme/webhooks/new/", data).status_code == 302
    hook = Webhook.objects.get(namespace=acme.key)
    receiver.respond = redirecting({"/hook": (308, other_host.url)})
    client.post("/namespaces/acme/variables/", {"key": "REGION", "value": "eu"})
    deliver_due()
    delivery = Delivery.objects.get(webhook=hook)
    page = client.get(f"/namespaces/acme/webhooks/{hook.pk}/deliveries/{delivery.pk}/")
    text = page.content.decode()
    assert "Redirects followed" in text
    assert f"<code>POST {receiver.url}</code> → HTTP 308" in text
    assert f"<code>POST {other_host.url}</code> → HTTP 200" in text

    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    admin = Client()
    admin.force_login(staff)
    shown = admin.get(f"/admin/hooks/delivery/{delivery.pk}/change/").content.decode()
    assert (
        "Redirects followed" in shown and f"<code>POST {other_host.url}</code> → HTTP 200" in shown
    )

    token = ApiToken.issue(owner, "hops")[1]
    answer = Client().get(f"/api/v1/webhooks/{hook.pk}/deliveries",
                          HTTP_AUTHORIZATION=f"Bearer {token}").json()  # fmt: skip
    assert answer[0]["attempts"][0]["hops"] == [
        {"method": "POST", "url": receiver.url, "status": 308},
        {"method": "POST", "url": other_host.url, "status": 200},
    ]

"""The signed-in user's Jobs pages: their jobs, each job's callback deliveries with the
request and response, Redeliver; the notification links there; others' jobs are 404."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

import hooks
from accounts import notification
from hooks.models import Delivery
from hooks.tools.receiver import Reply
from hooks.worker.attempt import deliver_due
from jobs import runner

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


def submit(api, **body) -> str:
    response = api("POST", "/v2/echo/run", {"input": {"prompt": "hi"}, **body})
    assert response.status_code == 200, response.content
    return response.json()["id"]


def test_a_user_sees_their_jobs_and_each_callback_with_request_and_response(
    api, ann, client, receiver
):
    job_id = submit(api, webhook=receiver.url)
    other = submit(api)
    runner.run(job_id)
    deliver_due()
    client.force_login(ann)
    listing = client.get("/jobs/").content.decode()
    assert job_id[:11] in listing and other[:11] in listing and "COMPLETED" in listing
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert "COMPLETED" in page and "&quot;prompt&quot;: &quot;hi&quot;" in page  # the callback body
    assert "HTTP 200" in page and f"webhook-id: {Delivery.objects.get().pk}" in page
    [callback] = Delivery.objects.all()
    assert client.post(f"/jobs/{job_id}/callbacks/{callback.pk}/redeliver/").status_code == 302
    deliver_due()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(callback.pk)] * 2
    assert "without a <code>webhook</code>" in client.get(f"/jobs/{other}/").content.decode()


def test_another_users_job_and_callbacks_are_404(api, ann, receiver):
    job_id = submit(api, webhook=receiver.url)
    runner.run(job_id)
    deliver_due()
    [callback] = Delivery.objects.all()
    bob = Client()
    bob.force_login(User.objects.create_user("bob@example.com", "bob@example.com", "pw"))
    assert bob.get(f"/jobs/{job_id}/").status_code == 404
    assert bob.post(f"/jobs/{job_id}/callbacks/{callback.pk}/redeliver/").status_code == 404
    assert job_id not in bob.get("/jobs/").content.decode()
    assert Delivery.objects.get().attempts == 1  # nothing was redelivered
    assert Client().get("/jobs/").status_code == 302  # to the login page


def test_the_notification_links_to_the_owners_job_page(api, ann, receiver, client):
    notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    job_id = submit(api)
    runner.run(job_id)
    deliver_due()
    [request] = receiver.requests
    url = json.loads(request.body)["job"]["url"]
    assert url.endswith(f"/jobs/{job_id}/")
    client.force_login(ann)
    assert client.get(url.split("localhost:8000", 1)[-1]).status_code == 200  # a page, not a 401


REPR = ("{'", "': '", "None", "True", "False")  # Python's repr, where JSON was meant


def test_job_input_and_output_read_as_json_on_the_list_and_the_page(api, ann, client):
    job_id = submit(api, input={"prompt": "hi", "steps": None, "hires": True})
    runner.run(job_id)
    client.force_login(ann)
    listing = client.get("/jobs/").content.decode()
    page = client.get(f"/jobs/{job_id}/").content.decode()
    for text in (listing, page):
        assert not [r for r in REPR if r in _cells(text)], _cells(text)
    assert "&quot;prompt&quot;: &quot;hi&quot;" in listing
    shown = page.split("<h2>Input</h2><pre>", 1)[1].split("</pre>", 1)[0]
    assert json.loads(shown.replace("&quot;", '"')) == {
        "prompt": "hi",
        "steps": None,
        "hires": True,
    }


def _cells(page: str) -> str:
    """The page's text without its markup, scripts and styles (where reprs would show)."""
    import re

    body = page.split("<main", 1)[-1]
    return re.sub(r"<[^>]+>", " ", body)


def test_an_empty_jobs_page_shows_a_job_to_try_on_this_hubs_address(ann, client, settings):
    settings.ALLOWED_HOSTS = ["hub.example.com"]
    client.force_login(ann)
    page = client.get("/jobs/", HTTP_HOST="hub.example.com").content.decode()
    assert "No jobs yet" in page
    assert "curl -X POST http://hub.example.com/v2/echo/runsync" in page
    assert 'data-copy="try-a-job"' in page


def test_a_pending_callback_says_when_its_next_attempt_is(api, ann, client, receiver):
    receiver.respond = lambda request: Reply(500)
    job_id = submit(api, webhook=receiver.url)
    runner.run(job_id)
    deliver_due()  # the first attempt fails: the callback waits for its retry
    callback = Delivery.objects.get()
    assert callback.status == "pending" and callback.next_attempt_at is not None
    client.force_login(ann)
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert f"next attempt {callback.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC" in page


def test_an_owner_sends_a_pending_callback_now_or_stops_its_retries(api, ann, client, receiver):
    receiver.respond = lambda request: Reply(500)
    job_id = submit(api, webhook=receiver.url)
    runner.run(job_id)
    deliver_due()
    callback = Delivery.objects.get()
    client.force_login(ann)
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert 'id="send-now"' in page and 'id="stop-retrying"' in page
    client.post(f"/jobs/{job_id}/callbacks/{callback.pk}/redeliver/")
    assert deliver_due() == 1 and len(receiver.requests) == 2  # sent now, not in 5 s
    page = client.post(f"/jobs/{job_id}/callbacks/{callback.pk}/stop/", follow=True)
    assert "will not be retried" in page.content.decode()
    callback.refresh_from_db()
    assert callback.status == "failed" and callback.next_attempt_at is None
    assert deliver_due() == 0 and len(receiver.requests) == 2  # no more attempts
    bob = Client()
    bob.force_login(User.objects.create_user("bob@example.com", "bob@example.com", "pw"))
    assert bob.post(f"/jobs/{job_id}/callbacks/{callback.pk}/stop/").status_code == 404

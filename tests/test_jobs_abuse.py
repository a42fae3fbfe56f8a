"""The job API against a user who sends what it should not: every refusal is a JSON
error with the right status, nothing is written, and one bad job cannot stop the jobs
sweeper."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from accounts.models import ApiToken
from jobs import maintenance
from jobs.models import Endpoint, Job

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def ann():
    return User.objects.create_user("ann@example.com", "ann@example.com", "pw")


@pytest.fixture
def call(client, ann):
    _, token = ApiToken.issue(ann, "tests")

    def send(method: str, path: str, raw: bytes | str = b"{}", who: str = token):
        auth = {"HTTP_AUTHORIZATION": f"Bearer {who}"}
        if method == "GET":
            return client.get(path, **auth)
        return client.generic(method, path, raw, content_type="application/json", **auth)

    return send


def refused(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    return response.json()


@pytest.mark.parametrize(
    "raw, message",
    [
        ('{"input": {"a": NaN}}', "NaN is not a JSON number"),
        ('{"input": {"a": Infinity}}', "Infinity is not a JSON number"),
        ('{"input": {"a": 1e999}}', "out of range"),
        ('{"input": ' + "[" * 5000 + "]" * 5000 + "}", "more than 100 levels deep"),
        ('{"input": ' + "[" * 100 + "]" * 100 + "}", "more than 100 levels deep"),
        ('{"input": {"text": "\\ud800"}}', "not valid Unicode"),
        ("[1, 2]", "must be a JSON object"),
        ("{", "not valid JSON"),
    ],
)
def test_bad_json_is_a_400_and_writes_nothing(call, raw, message):
    assert message in refused(call("POST", "/v2/echo/run", raw), 400)["error"]
    assert not Job.objects.exists()


def test_a_body_over_the_limit_is_a_413(call, settings):
    settings.JOB_PAYLOAD_LIMIT = 1000
    big = json.dumps({"input": {"text": "x" * 200_000}})
    assert "larger than" in refused(call("POST", "/v2/echo/run", big), 413)["error"]
    assert not Job.objects.exists()


def test_a_very_long_callback_url_is_refused(call):
    body = json.dumps({"input": {}, "webhook": "https://example.com/" + "a" * 100_000})
    assert refused(call("POST", "/v2/echo/run", body), 400)["field"] == "webhook"


def test_unknown_and_foreign_jobs_wrong_methods_and_routes_are_json(call, client):
    other = User.objects.create_user("bob@example.com", "bob@example.com", "pw")
    echo = Endpoint.objects.get(name="echo")
    bobs = Job.objects.create(endpoint=echo, user=other, input={})
    assert "No job" in refused(call("GET", "/v2/echo/status/nope"), 404)["error"]
    assert "No job" in refused(call("GET", f"/v2/echo/status/{bobs.pk}"), 404)["error"]
    response = call("GET", "/v2/echo/run")
    assert refused(response, 405)["error"] == "Use POST here." and response["Allow"] == "POST"
    assert refused(call("POST", "/v2/echo/health"), 405)["error"] == "Use GET here."
    assert refused(client.get("/v2/echo/run"), 405)["error"] == "Use POST here."  # no token
    assert "No job API route" in refused(client.get("/v2/nothing/here/at/all"), 404)["error"]


def test_tags_are_capped_per_call(call, ann):
    job = Job.objects.create(endpoint=Endpoint.objects.get(name="echo"), user=ann, input={})
    many = json.dumps({"tags": [f"t{n}" for n in range(5000)]})
    assert refused(call("POST", f"/v2/echo/tag/{job.pk}", many), 400)["field"] == "tags"
    job.refresh_from_db()
    assert job.tags == []


def test_health_counts_only_the_callers_jobs(call, ann):
    echo = Endpoint.objects.get(name="echo")
    other = User.objects.create_user("bob@example.com", "bob@example.com", "pw")
    Job.objects.create(endpoint=echo, user=other, input={})
    Job.objects.create(endpoint=echo, user=ann, input={})
    assert call("GET", "/v2/echo/health").json()["jobs"]["inQueue"] == 1


def test_one_job_the_sweeper_cannot_handle_does_not_stop_it(ann, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from jobs import lifecycle

    echo = Endpoint.objects.get(name="echo")
    old = timezone.now() - timedelta(days=2)
    jobs = [Job.objects.create(endpoint=echo, user=ann, input={}, ttl_ms=10_000) for _ in range(3)]
    Job.objects.update(created_at=old)
    real = lifecycle.finish

    def breaks_on_the_first(job, *args, **kwargs):
        if job.pk == jobs[0].pk:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(job, *args, **kwargs)

    monkeypatch.setattr(lifecycle, "finish", breaks_on_the_first)
    assert maintenance.sweep()["expired"] == 2
    assert sorted(Job.objects.values_list("status", flat=True)) == [
        "IN_QUEUE",
        "TIMED_OUT",
        "TIMED_OUT",
    ]


def test_a_signup_email_longer_than_the_column_is_refused(client):
    email = "a" * 290 + "@example.com"
    response = client.post("/accounts/signup/", {"name": "A", "email": email,
                                                 "password": "a long and unusual passphrase"})  # fmt: skip
    assert response.status_code in (200, 400) and not User.objects.filter(email=email).exists()


def test_runsync_long_polls_are_bounded_per_user_and_per_process(call, ann, settings):
    """Beyond the bounds a runsync call is a 429 at once and queues nothing, so long polls
    cannot hold every thread of a web process."""
    from jobs import waiters

    settings.RUNSYNC_WAITERS, settings.RUNSYNC_WAITERS_PER_USER = 2, 1
    settings.RUNSYNC_POLL = 0.01
    with waiters.slot(ann.pk):  # ann already waits once
        response = call("POST", "/v2/echo/runsync?wait=1000", '{"input": {}}')
        assert "one user" in refused(response, 429)["error"] and response["Retry-After"] == "1"
    with waiters.slot(-1), waiters.slot(-2):  # the process is full
        response = call("POST", "/v2/echo/runsync?wait=1000", '{"input": {}}')
        assert "on this server" in refused(response, 429)["error"]
    assert not Job.objects.exists()
    response = call("POST", "/v2/echo/runsync?wait=1000", '{"input": {}}')  # room again
    assert response.status_code == 200 and Job.objects.count() == 1

"""The RunPod-compatible job API, with the runner called in-process."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Verifier

import hooks
from accounts import notification
from hooks.models import Delivery, Event
from hooks.worker.attempt import deliver_due
from jobs import lifecycle, runner
from jobs.models import Endpoint, Job
from tests.conftest import db_thread

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


def submit(api, endpoint="echo", **body) -> str:
    body.setdefault("input", {"prompt": "hi"})
    response = api("POST", f"/v2/{endpoint}/run", body)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "IN_QUEUE"
    return response.json()["id"]


def test_builtin_endpoints_exist():
    assert set(Endpoint.objects.values_list("name", flat=True)) >= {"echo", "sleep"}


@pytest.mark.parametrize("token", [None, "whk_wrong", "Basic abc"])
def test_auth_failures_get_401(api, token):
    response = api("POST", "/v2/echo/run", {"input": {}}, token=token)
    assert response.status_code == 401 and "Bearer" in response.json()["error"]
    assert Job.objects.count() == 0


def test_unknown_endpoint_is_404(api):
    assert api("POST", "/v2/nope/run", {"input": {}}).status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "input"),
        ({"input": [1, 2]}, "input"),
        ({"input": {}, "policy": {"executionTimeout": 100}}, "policy.executionTimeout"),
        ({"input": {}, "policy": {"executionTimeout": "10s"}}, "policy.executionTimeout"),
        ({"input": {}, "policy": {"ttl": 9_000}}, "policy.ttl"),
        ({"input": {}, "policy": {"ttl": 8 * 24 * 3600 * 1000}}, "policy.ttl"),
        ({"input": {}, "policy": {"lowPriority": "yes"}}, "policy.lowPriority"),
        ({"input": {}, "policy": {"webhooks": "loud"}}, "policy.webhooks"),
        ({"input": {}, "policy": []}, "policy"),
        ({"input": {}, "webhook": "ftp://example.com"}, "webhook"),
        ({"input": {}, "webhook": 5}, "webhook"),
        ({"input": {}, "tags": "x"}, "tags"),
        ({"input": {}, "tags": [""]}, "tags"),
        ({"input": {}, "tags": [f"t{n}" for n in range(21)]}, "tags"),
        ({"input": {}, "namespace": ""}, "namespace"),
        # strict, as the schema the OpenAPI document shows: no coercion
        ({"input": {}, "policy": {"executionTimeout": "600000"}}, "policy.executionTimeout"),
        ({"input": {}, "policy": {"ttl": True}}, "policy.ttl"),
        ({"input": {}, "policy": {"lowPriority": 1}}, "policy.lowPriority"),
    ],
)
def test_malformed_bodies_get_400_naming_the_field(api, body, field):
    response = api("POST", "/v2/echo/run", body)
    assert response.status_code == 400 and response.json()["field"] == field
    assert response.json()["error"]
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    "body, error",
    [
        ({}, "'input' is required."),
        ({"input": "hi"}, "'input' must be a JSON object."),
        ({"input": {}, "webhook": 5}, "'webhook' must be a URL string."),
        ({"input": {}, "webhook": "https://e.com/" + "a" * 2000}, "'webhook' is longer than 2000 characters."),
        ({"input": {}, "policy": 5}, "'policy' must be a JSON object."),
        ({"input": {}, "policy": {"executionTimeout": 1.5}}, "policy.executionTimeout must be a whole number of milliseconds."),
        ({"input": {}, "policy": {"ttl": 1}}, "policy.ttl must be between 10000 and 604800000 ms."),
        ({"input": {}, "policy": {"lowPriority": "no"}}, "policy.lowPriority must be true or false."),
        ({"input": {}, "policy": {"webhooks": "x"}}, "policy.webhooks must be 'none', 'normal', 'manual', 'manual_at_end', 'None', 'Normal', 'Manual' or 'Manual At End'."),
        ({"input": {}, "tags": [1]}, "'tags' must be a list of short strings."),
        ({"input": {}, "tags": ["t"] * 21}, "At most 20 tags per request."),
        ({"input": {}, "namespace": 7}, "'namespace' must be a namespace's path, e.g. \"acme/ci\"."),
    ],
)  # fmt: skip
def test_refusals_are_worded_as_the_job_api_words_them(api, body, error):
    """RunPod's wording (jobs/wording.py) over pydantic's."""
    assert api("POST", "/v2/echo/run", body).json()["error"] == error


def test_an_input_over_the_payload_limit_is_refused_naming_its_size(api, settings):
    settings.JOB_PAYLOAD_LIMIT = 1000
    response = api("POST", "/v2/echo/run", {"input": {"text": "x" * 2000}})
    assert response.status_code == 400 and response.json() == {
        "error": "'input' is 2011 bytes; the limit is 1000.",
        "field": "input",
    }
    assert Job.objects.count() == 0


def test_the_document_shows_the_schemas_that_validate(client):
    from jobs.schemas import RunIn, TagIn

    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path, schema in [("run", RunIn), ("runsync", RunIn), ("tag/{job_id}", TagIn)]:
        body = paths[f"/v2/{{endpoint}}/{path}"]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"] == schema.model_json_schema()


def test_not_json_is_400(api):
    response = api("POST", "/v2/echo/run", raw_body=b"{nope")
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]


def test_internal_webhook_urls_are_refused(api, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    response = api("POST", "/v2/echo/run", {"input": {}, "webhook": "http://169.254.169.254/x"})
    assert response.status_code == 400 and response.json()["field"] == "webhook"


def test_run_then_status_with_runpod_fields(api):
    job_id = submit(api)
    assert Event.objects.filter(type="job.submitted").count() == 1
    assert runner.run(job_id) == "COMPLETED"
    body = api("GET", f"/v2/echo/status/{job_id}").json()
    assert (
        body["id"] == job_id
        and body["status"] == "COMPLETED"
        and body["output"] == {"prompt": "hi"}
    )
    assert isinstance(body["delayTime"], int) and isinstance(body["executionTime"], int)
    assert {e.type for e in Event.objects.all()} >= {"job.submitted", "job.started", "job.finished"}


def test_per_job_webhook_gets_the_runpod_callback_signed_with_the_users_secret(api, ann, receiver):
    hook, _ = notification.save(ann, "https://example.com/notify", hooks.SecretChange("generate"))
    job_id = submit(api, input={"prompt": "astronaut"}, webhook=receiver.url)
    runner.run(job_id)
    deliver_due()
    [request] = [r for r in receiver.requests]
    body = Verifier(hook.secret).verify(request.body, request.headers)
    assert set(body) == {"id", "status", "delayTime", "executionTime", "input", "output", "webhook"}
    assert (
        body["id"] == job_id and body["status"] == "COMPLETED" and body["webhook"] == receiver.url
    )
    assert body["input"] == body["output"] == {"prompt": "astronaut"}
    callback = Delivery.objects.get(target_url=receiver.url)
    assert callback.retry_schedule[:3] == [0, 10, 10]  # RunPod: two retries 10 s apart


def test_the_users_secret_is_never_copied_into_the_callback_or_shown(
    api, ann, receiver, admin_client
):
    """The callback names the notification webhook whose secret signs it; the secret
    stays in that one place, and a rotation applies to pending callbacks too."""
    hook, _ = notification.save(ann, "https://example.com/notify", hooks.SecretChange("generate"))
    job_id = submit(api, input={"prompt": "x"}, webhook=receiver.url)
    runner.run(job_id)
    callback = Delivery.objects.get(target_url=receiver.url)
    assert callback.signed_by_id == hook.pk
    stored = json.dumps(list(Delivery.objects.filter(pk=callback.pk).values()), default=str)
    assert hook.secret not in stored and "whsec_" not in stored
    page = admin_client.get(f"/admin/hooks/delivery/{callback.pk}/change/").content.decode()
    assert page.count("whsec_") == 0
    old = hook.secret
    new = hooks.rotate_secret(hook).new_secret
    deliver_due()
    [request] = receiver.requests
    Verifier(new).verify(request.body, request.headers)  # the current secret signs
    Verifier(old).verify(request.body, request.headers)  # and the old one, for a day
    page = admin_client.get(f"/admin/hooks/delivery/{callback.pk}/change/").content.decode()
    assert new not in page and old not in page


def test_a_callback_without_a_signing_notification_webhook_is_unsigned(api, ann, receiver):
    notification.save(ann, "https://example.com/notify", hooks.SecretChange("remove"))
    job_id = submit(api, webhook=receiver.url)
    runner.run(job_id)
    deliver_due()
    [request] = receiver.requests
    assert "webhook-signature" not in {k.lower() for k in request.headers}
    assert Delivery.objects.get(target_url=receiver.url).signed_by_id is None


def test_a_failed_callback_is_retried_after_10_seconds(api, receiver):
    from hooks.tools.receiver import Reply

    receiver.respond = lambda request: Reply(500)
    job_id = submit(api, webhook=receiver.url)
    runner.run(job_id)
    deliver_due()
    callback = Delivery.objects.get(target_url=receiver.url)
    wait = (callback.next_attempt_at - callback.attempt_set.get().started_at).total_seconds()
    assert 8 <= wait <= 12.5


def test_a_handler_error_fails_the_job(api):
    job_id = submit(api, endpoint="sleep", input={"seconds": -1})
    assert runner.run(job_id) == "FAILED"
    body = api("GET", f"/v2/sleep/status/{job_id}").json()
    assert body["status"] == "FAILED" and "negative" in body["error"] and "output" not in body


def test_execution_timeout_stops_the_handler(api):
    job_id = submit(api, endpoint="sleep", input={"seconds": 30})
    Job.objects.filter(pk=job_id).update(execution_timeout_ms=300)
    assert runner.run(job_id) == "TIMED_OUT"
    job = Job.objects.get(pk=job_id)
    assert "Execution timeout" in job.error and job.execution_ms() < 5000


def test_ttl_expired_before_start_times_out(api):
    job_id = submit(api, policy={"ttl": 10_000})
    Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(seconds=11))
    assert runner.run(job_id) == "TIMED_OUT"
    assert "ttl expired" in Job.objects.get(pk=job_id).error
    gone = api("GET", f"/v2/echo/status/{job_id}")  # RunPod removes it: 404 afterwards
    assert gone.status_code == 404 and "ttl of 10000 ms ran out" in gone.json()["error"]


def test_a_finished_job_answers_404_once_its_ttl_ran_out(api):
    job_id = submit(api, policy={"ttl": 10_000})
    assert runner.run(job_id) == "COMPLETED"
    assert api("GET", f"/v2/echo/status/{job_id}").status_code == 200
    Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(seconds=11))
    assert api("GET", f"/v2/echo/status/{job_id}").status_code == 404


def test_cancel_queued_and_running_jobs(api):
    queued = submit(api)
    assert api("POST", f"/v2/echo/cancel/{queued}").json() == {"id": queued, "status": "CANCELLED"}
    assert runner.run(queued) is None  # nothing left to run
    running = submit(api, endpoint="sleep", input={"seconds": 30})
    outcome = []
    worker = db_thread(lambda: outcome.append(runner.run(running)))
    worker.start()
    import time

    deadline = time.monotonic() + 10
    while Job.objects.get(pk=running).status != "IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert api("POST", f"/v2/sleep/cancel/{running}").json()["status"] == "CANCELLED"
    worker.join(10)
    assert outcome == ["CANCELLED"] and Job.objects.get(pk=running).status == "CANCELLED"
    assert Event.objects.filter(type="job.finished").count() == 2  # once each


def test_retry_only_failed_or_timed_out(api):
    done = submit(api)
    runner.run(done)
    response = api("POST", f"/v2/echo/retry/{done}")
    assert response.status_code == 400 and "COMPLETED" in response.json()["error"]
    failed = submit(api, endpoint="sleep", input={"seconds": -1})
    runner.run(failed)
    assert api("POST", f"/v2/sleep/retry/{failed}").json() == {"id": failed, "status": "IN_QUEUE"}
    job = Job.objects.get(pk=failed)
    assert job.status == "IN_QUEUE" and job.retries == 1 and job.error == ""


def test_health_and_purge_queue(api):
    ids = [submit(api) for _ in range(3)]
    runner.run(ids[0])
    health = api("GET", "/v2/echo/health").json()
    assert health["jobs"]["completed"] == 1 and health["jobs"]["inQueue"] == 2
    assert api("POST", "/v2/echo/purge-queue").json() == {"removed": 2, "status": "completed"}
    assert api("GET", "/v2/echo/health").json()["jobs"]["inQueue"] == 0


def test_tags_after_submission_emit_job_tagged_but_not_at_submission(api):
    job_id = submit(api, tags=["first"])
    assert Event.objects.filter(type="job.tagged").count() == 0
    body = api("POST", f"/v2/echo/tag/{job_id}", {"tags": ["first", "urgent", "urgent"]}).json()
    assert body["tags"] == ["first", "urgent"] and body["added"] == ["urgent"]
    [tagged] = Event.objects.filter(type="job.tagged")
    assert tagged.payload["tag"] == "urgent"
    assert api("POST", f"/v2/echo/tag/{job_id}", {"tags": []}).status_code == 400


def test_another_users_jobs_are_not_found(api, client):
    bob = User.objects.create_user("bob@example.com", "bob@example.com", "pw")
    bobs = lifecycle.submit(Job(endpoint=Endpoint.objects.get(name="echo"), user=bob, input={}))
    assert api("GET", f"/v2/echo/status/{bobs.id}").status_code == 404
    assert api("POST", f"/v2/echo/cancel/{bobs.id}").status_code == 404
    assert api("POST", "/v2/echo/purge-queue").json()["removed"] == 0
    assert Job.objects.get(pk=bobs.id).status == "IN_QUEUE"


def test_owner_is_notified_when_away(api, ann, receiver):
    notification.save(ann, receiver.url, hooks.SecretChange("remove"))
    job_id = submit(api)
    runner.run(job_id)
    deliver_due()
    [request] = receiver.requests
    assert json.loads(request.body)["job"]["id"] == job_id
    assert json.loads(request.body)["job"]["url"].endswith(f"/jobs/{job_id}/")  # the owner's page

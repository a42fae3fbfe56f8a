"""A job's callback under RunPod's rule, chosen per job (`policy.callbackRule`): only
HTTP 200 delivers it, three attempts 10 s apart, then failed; the hub's rule (the
default) takes any 2xx. Against a real receiver, the attempts made by the delivery
path the workers run."""

from __future__ import annotations

import pytest
from django.utils import timezone

from hooks.models import Attempt, Delivery
from hooks.tools.receiver import Reply
from hooks.worker.attempt import deliver_due
from jobs import runner
from jobs.models import Job
from tests.test_jobs_api import submit

pytestmark = pytest.mark.django_db(transaction=True)


def due_again(delivery: Delivery) -> None:
    """Move the clock for this callback: its next attempt is due now."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def finished_job(api, receiver, status: int, **policy) -> tuple[str, Delivery]:
    """A completed job whose callback's receiver answers `status`; its callback."""
    receiver.respond = lambda request: Reply(status, body=b"")
    job_id = submit(api, webhook=receiver.url, **({"policy": policy} if policy else {}))
    assert runner.run(job_id) == "COMPLETED"
    return job_id, Delivery.objects.get(target_url=receiver.url)


def test_runpods_rule_retries_a_202_twice_10_s_apart_then_fails_it(
    api, ann, client, receiver, settings
):
    settings.JOB_CALLBACK_SCHEDULE = [0, 60]  # the hub's rule's; RunPod's rule is its own
    job_id, callback = finished_job(api, receiver, 202, callbackRule="runpod")
    assert callback.success_status == 200
    assert (callback.retry_schedule, callback.max_attempts) == ([0, 10, 10], 3)
    for number in (1, 2, 3):
        assert deliver_due() == 1
        callback.refresh_from_db()
        if number < 3:  # waits 10 s (the hub's ±20 % jitter) for the next one
            assert callback.status == "pending"
            started = Attempt.objects.get(delivery=callback, number=number).started_at
            assert 8 <= (callback.next_attempt_at - started).total_seconds() <= 12.5
            due_again(callback)
    assert callback.status == "failed" and callback.attempts == 3
    assert deliver_due() == 0 and len(receiver.requests) == 3  # no fourth attempt
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(callback.pk)}
    attempts = Attempt.objects.filter(delivery=callback)
    assert [a.response_status for a in attempts] == [202, 202, 202]
    assert not any(a.succeeded for a in attempts)
    assert "HTTP 202: this delivery succeeds on HTTP 200 alone" in callback.last_error
    client.force_login(ann)
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert "<strong>Failed</strong></span> after 3 attempts" in page
    assert "RunPod's rule: only HTTP 200 counts as delivered" in page
    assert page.count("HTTP 202: this delivery succeeds on HTTP 200 alone") == 3


def test_runpods_rule_delivers_on_200(api, receiver):
    _, callback = finished_job(api, receiver, 200, callbackRule="runpod")
    assert deliver_due() == 1
    callback.refresh_from_db()
    assert callback.status == "succeeded" and callback.attempts == 1


@pytest.mark.parametrize("policy", [{}, {"callbackRule": "hub"}])
def test_the_hubs_rule_delivers_on_any_2xx(api, ann, client, receiver, settings, policy):
    job_id, callback = finished_job(api, receiver, 202, **policy)
    assert callback.success_status is None
    assert callback.retry_schedule == list(settings.JOB_CALLBACK_SCHEDULE)
    assert deliver_due() == 1
    callback.refresh_from_db()
    assert callback.status == "succeeded" and callback.last_error == ""
    client.force_login(ann)
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert "Any 2xx counts as delivered" in page and "Succeeded" in page


def test_an_unknown_callback_rule_is_refused_and_queues_nothing(api):
    response = api("POST", "/v2/echo/run", {"input": {}, "policy": {"callbackRule": "strict"}})
    assert response.status_code == 400
    assert response.json() == {
        "error": "policy.callbackRule must be 'hub' or 'runpod'.",
        "field": "policy.callbackRule",
    }
    assert Job.objects.count() == 0


def test_the_openapi_document_shows_the_callback_rule(client):
    run = client.get("/api/v1/openapi.json").json()["paths"]["/v2/{endpoint}/run"]["post"]
    body = run["requestBody"]["content"]["application/json"]["schema"]
    rule = body["$defs"]["Policy"]["properties"]["callbackRule"]
    assert rule["enum"] == ["hub", "runpod"] and rule["default"] == "hub"
    assert "HTTP 200 only" in rule["description"]

"""The job API as RunPod's clients see it: the bare key in Authorization, `sync-` ids,
handler errors in RunPod's shape, and the callback's retry policy."""

from __future__ import annotations

import json

import pytest

from hooks.models import Delivery
from jobs import maintenance, runner
from jobs.models import Endpoint, Job
from tests.test_jobs_api import submit

pytestmark = pytest.mark.django_db(transaction=True)


def fails_with_partial_output(job: dict):
    """A handler that reports an error and what it got done (RunPod keeps both)."""
    return {"error": "the second half failed", "first_half": job["input"]["n"]}


def test_the_bare_key_works_as_in_runpods_curl_examples(client, ann):
    from accounts.models import ApiToken

    _, raw = ApiToken.issue(ann, "curl")
    response = client.post(
        "/v2/echo/run", data=json.dumps({"input": {"a": 1}}), content_type="application/json",
        HTTP_AUTHORIZATION=raw,
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["status"] == "IN_QUEUE"
    wrong = client.get("/v2/echo/health", HTTP_AUTHORIZATION="whk_not_a_token")
    assert wrong.status_code == 401 and "bare" in wrong.json()["error"]


def test_runsync_ids_start_with_sync_and_run_ids_do_not(api, settings):
    settings.RUNSYNC_POLL = 0.01
    sync = api("POST", "/v2/echo/runsync?wait=1000", {"input": {"a": 1}}).json()
    assert sync["id"].startswith("sync-") and Job.objects.filter(pk=sync["id"]).exists()
    assert not submit(api).startswith("sync-")


def test_a_handler_exception_is_reported_as_runpod_does(api):
    job_id = submit(api, endpoint="sleep", input={"seconds": "not a number"})
    assert runner.run(job_id) == "FAILED"
    body = api("GET", f"/v2/sleep/status/{job_id}").json()
    assert body["status"] == "FAILED" and "output" not in body
    error = json.loads(body["error"])  # a JSON string, as RunPod's worker sends it
    assert set(error) == {
        "error_type", "error_message", "error_traceback", "hostname", "worker_id",
        "runpod_version",
    }  # fmt: skip
    assert error["error_type"] == "<class 'ValueError'>"
    assert "not a number" in error["error_message"]
    assert "Traceback" in error["error_traceback"] and error["hostname"]


def test_a_returned_error_keeps_the_other_keys_as_output(api):
    Endpoint.objects.create(
        name="partial", handler=f"{__name__}.fails_with_partial_output", description="test"
    )
    job_id = submit(api, endpoint="partial", input={"n": 7})
    assert runner.run(job_id) == "FAILED"
    body = api("GET", f"/v2/partial/status/{job_id}").json()
    assert body["error"] == "the second half failed" and body["output"] == {"first_half": 7}


@pytest.mark.parametrize("schedule, attempts", [(None, 11), ([0, 10, 10], 3)])
def test_the_callback_follows_runpods_retries_or_the_hubs_schedule(
    api,
    settings,
    receiver,
    schedule,
    attempts,
):
    if schedule is not None:
        settings.JOB_CALLBACK_SCHEDULE = schedule  # RunPod's exact policy
    job_id = submit(api, webhook=receiver.url)
    runner.run(job_id)
    callback = Delivery.objects.get(target_url=receiver.url)
    assert callback.max_attempts == attempts
    assert list(callback.retry_schedule[:3]) == [0, 10, 10]


def test_the_ttl_covers_the_whole_life_of_a_job_that_runs(api):
    """A job whose ttl runs out while it runs is stopped and reported TIMED_OUT, as
    RunPod does; its execution timeout alone would have let it go on."""
    from datetime import timedelta

    from django.utils import timezone

    job_id = submit(api, endpoint="sleep", input={"seconds": 30}, policy={"ttl": 10_000})
    Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(seconds=9.5))
    assert runner.run(job_id) == "TIMED_OUT"
    job = Job.objects.get(pk=job_id)
    assert "ttl of 10000 ms expired while it ran" in job.error and job.execution_ms() < 5000


def test_health_counts_the_live_job_workers(api):
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import WorkerCluster

    WorkerCluster.objects.create(name="a:1", workers=2, seen_at=timezone.now())
    WorkerCluster.objects.create(
        name="b:2", workers=5, seen_at=timezone.now() - timedelta(minutes=1)
    )
    job_id = submit(api)
    Job.objects.filter(pk=job_id).update(status="IN_PROGRESS")
    assert api("GET", "/v2/echo/health").json()["workers"] == {"idle": 1, "running": 1}


def finished(api, *, ago: float, sync: bool = False) -> str:
    from datetime import timedelta

    from django.utils import timezone

    job_id = submit(api)
    if sync:
        Job.objects.filter(pk=job_id).update(id=f"sync-{job_id}")
        job_id = f"sync-{job_id}"
    Job.objects.filter(pk=job_id).update(
        status="COMPLETED", output={"a": 1}, completed_at=timezone.now() - timedelta(seconds=ago)
    )
    return job_id


def test_results_expire_as_runpods_do(api):
    """Kept 30 minutes after a /run job, 1 minute after a /runsync job; then 404 JSON."""
    fresh, old = finished(api, ago=1790), finished(api, ago=1810)
    fresh_sync, old_sync = finished(api, ago=50, sync=True), finished(api, ago=70, sync=True)
    for job_id in (fresh, fresh_sync):
        assert api("GET", f"/v2/echo/status/{job_id}").json()["output"] == {"a": 1}
    for job_id in (old, old_sync):
        response = api("GET", f"/v2/echo/status/{job_id}")
        assert response.status_code == 404 and "expired" in response.json()["error"]
        assert api("GET", f"/v2/echo/stream/{job_id}").status_code == 404
    assert maintenance.sweep()["pruned"] == 2
    assert set(Job.objects.values_list("pk", flat=True)) == {fresh, fresh_sync}


def test_result_retention_follows_the_settings(api, settings):
    settings.JOB_RESULT_TTL, settings.JOB_RESULT_TTL_SYNC = 7 * 24 * 3600, 300
    kept, kept_sync = finished(api, ago=1810), finished(api, ago=70, sync=True)
    assert maintenance.sweep()["pruned"] == 0
    assert api("GET", f"/v2/echo/status/{kept}").status_code == 200
    assert api("GET", f"/v2/echo/status/{kept_sync}").status_code == 200


def test_a_negative_result_retention_stops_start_up(settings):
    from jobs.checks import job_settings

    settings.JOB_RESULT_TTL_SYNC = -1
    assert [e.id for e in job_settings()] == ["jobs.E002"]

"""Generator handlers and `/stream/{id}`, as RunPod's workers and clients know them."""

from __future__ import annotations

import json

import pytest

from jobs import lifecycle, runner
from jobs.models import Chunk, Endpoint, Job
from tests.test_jobs_api import submit

pytestmark = pytest.mark.django_db(transaction=True)


def fails_half_way(job: dict):
    yield "first"
    yield {"error": "the GPU fell over"}
    yield "never"


def raises_half_way(job: dict):
    yield "first"
    raise RuntimeError("out of memory")


def big_output(job: dict):
    """More than a pipe holds (64 KiB): the worker must read while the child writes."""
    return {"text": "x" * job["input"]["size"]}


def big_chunk(job: dict):
    yield "short"
    yield "y" * job["input"]["size"]


def endpoint(name: str, handler, **fields) -> Endpoint:
    return Endpoint.objects.create(name=name, handler=f"{__name__}.{handler.__name__}", **fields)


def stream(api, job_id: str, name: str = "words") -> dict:
    response = api("GET", f"/v2/{name}/stream/{job_id}")
    assert response.status_code == 200, response.content
    return response.json()


def test_each_chunk_is_streamed_once_and_the_output_is_their_list(api):
    job_id = submit(api, endpoint="words", input={"text": "a quick brown fox"})
    assert stream(api, job_id) == {"status": "IN_QUEUE", "stream": []}
    assert runner.run(job_id) == "COMPLETED"
    first = stream(api, job_id)
    assert first == {
        "status": "COMPLETED",
        "stream": [{"output": w} for w in ("a", "quick", "brown", "fox")],
    }
    assert stream(api, job_id) == {"status": "COMPLETED", "stream": []}  # handed out once
    status = api("GET", f"/v2/words/status/{job_id}").json()
    assert status["output"] == ["a", "quick", "brown", "fox"]


def test_without_aggregation_the_output_is_empty_as_runpods_default(api):
    Endpoint.objects.filter(name="words").update(aggregate_stream=False)
    job_id = submit(api, endpoint="words", input={"text": "one two"})
    assert runner.run(job_id) == "COMPLETED"
    assert api("GET", f"/v2/words/status/{job_id}").json()["output"] == []
    assert [c["output"] for c in stream(api, job_id)["stream"]] == ["one", "two"]


def test_an_error_chunk_fails_the_job_and_keeps_what_was_streamed(api):
    endpoint("halfway", fails_half_way)
    job_id = submit(api, endpoint="halfway")
    assert runner.run(job_id) == "FAILED"
    job = Job.objects.get(pk=job_id)
    assert job.error == "the GPU fell over" and job.output is None
    assert stream(api, job_id, "halfway") == {"status": "FAILED", "stream": [{"output": "first"}]}


def test_an_exception_in_a_generator_is_reported_as_runpod_does(api):
    endpoint("raises", raises_half_way)
    job_id = submit(api, endpoint="raises")
    assert runner.run(job_id) == "FAILED"
    error = json.loads(Job.objects.get(pk=job_id).error)
    assert error["error_type"] == "<class 'RuntimeError'>"
    assert error["error_message"] == "out of memory"


def test_an_output_larger_than_a_pipe_completes(api):
    endpoint("big", big_output)
    job_id = submit(api, endpoint="big", input={"size": 200_000}, policy={"executionTimeout": 5000})
    assert runner.run(job_id) == "COMPLETED"
    assert len(Job.objects.get(pk=job_id).output["text"]) == 200_000


@pytest.mark.parametrize(
    ("setting", "value", "most"),
    [("JOB_PAYLOAD_LIMIT", 100_000, 100_000), ("WEBHOOK_MAX_EVENT_BYTES", 500_000, 247_937)],
    ids=["over the payload limit", "over what the end events carry"],
)
def test_an_output_too_large_fails_the_job_clearly(api, settings, setting, value, most):
    """RunPod's rule: a result over the payload limit fails; so does one the job's end
    events could not carry within WEBHOOK_MAX_EVENT_BYTES (Every Job carries the input
    and the output twice). Before, the events refused it and the job stayed running."""
    setattr(settings, setting, value)
    endpoint("big", big_output)
    job_id = submit(api, endpoint="big", input={"size": 300_000})
    assert runner.run(job_id) == "FAILED"
    job = Job.objects.get(pk=job_id)
    assert job.output is None
    assert job.error == f"The job's output is 300011 bytes; at most {most} fit."


def test_a_chunk_over_the_payload_limit_fails_the_job(api, settings):
    settings.JOB_PAYLOAD_LIMIT = 1000
    endpoint("bigchunk", big_chunk)
    job_id = submit(api, endpoint="bigchunk", input={"size": 2000})
    assert runner.run(job_id) == "FAILED"
    job = Job.objects.get(pk=job_id)
    assert job.error == "A streamed chunk is 2002 bytes; at most 1000 fit."
    assert list(job.chunks.values_list("output", flat=True)) == ["short"]


def test_a_retried_job_streams_anew(api):
    job_id = submit(api, endpoint="words", input={"text": "again"})
    runner.run(job_id)
    Job.objects.filter(pk=job_id).update(status="FAILED")
    assert lifecycle.retry(Job.objects.get(pk=job_id))
    assert runner.run(job_id) == "COMPLETED"
    assert Chunk.objects.filter(job_id=job_id).count() == 1


def test_streaming_someone_elses_job_is_a_json_404(api, client):
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken

    job_id = submit(api, endpoint="words", input={"text": "mine"})
    bob = get_user_model().objects.create_user("bob@example.com", "bob@example.com", "pw")
    _, raw = ApiToken.issue(bob, "bob")
    response = client.get(f"/v2/words/stream/{job_id}", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 404 and "error" in response.json()


async def async_echo(job: dict):
    import asyncio

    await asyncio.sleep(0)
    return {"echo": job["input"]}


async def async_words(job: dict):
    import asyncio

    for word in job["input"]["text"].split():
        await asyncio.sleep(0)
        yield word


def test_async_handlers_and_async_generators_run_as_runpods_worker_runs_them(api):
    endpoint("aecho", async_echo)
    job_id = submit(api, endpoint="aecho", input={"prompt": "hi"})
    assert runner.run(job_id) == "COMPLETED"
    assert api("GET", f"/v2/aecho/status/{job_id}").json()["output"] == {"echo": {"prompt": "hi"}}
    endpoint("awords", async_words)
    job_id = submit(api, endpoint="awords", input={"text": "one two three"})
    assert runner.run(job_id) == "COMPLETED"
    assert [c["output"] for c in stream(api, job_id, "awords")["stream"]] == ["one", "two", "three"]


def test_a_new_generator_endpoint_does_not_aggregate_its_stream_as_runpods_default(api):
    endpoint("plain", async_words)
    job_id = submit(api, endpoint="plain", input={"text": "a b"})
    assert runner.run(job_id) == "COMPLETED"
    assert api("GET", f"/v2/plain/status/{job_id}").json()["output"] == []
    assert [c["output"] for c in stream(api, job_id, "plain")["stream"]] == ["a", "b"]

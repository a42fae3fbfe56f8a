"""Jobs as large as RunPod's: its payload limits on inputs (10 MB on /run, 20 MB on
/runsync), outputs as large as a handler returns within them, and a callback carrying
the whole status JSON, signed; with the stock `runpod` SDK as the client, the hub's own
processes and a real receiver."""

from __future__ import annotations

import base64
import json
import random

import pytest
from django.contrib.auth import get_user_model
from standardwebhooks.webhooks import Webhook as Verifier

import hooks
from accounts import notification
from accounts.models import ApiToken
from hooks.models import Attempt, Event, LargeValue
from hooks.tools.receiver import Receiver
from jobs import runner
from jobs.models import Endpoint, Job
from tests import test_jobs_e2e
from tests.test_jobs_api import submit

pytestmark = pytest.mark.django_db(transaction=True)
processes = test_jobs_e2e.processes  # the fixture: real qcluster and runjobs processes
MiB = 1024 * 1024
# The seed's own example (RunPod's "Using a Webhook" page): a txt2img request through a
# Stable Diffusion worker, with a seed of its own so its image is always the same.
SEED_INPUT = {
    "api": {"method": "POST", "endpoint": "/sdapi/v1/txt2img"},
    "payload": {
        "prompt": "an astronaut riding a horse", "negative_prompt": "", "seed": 476701233,
        "batch_size": 1, "steps": 30, "cfg_scale": 7, "width": 512, "height": 512,
        "sampler_name": "DPM++ SDE Karras", "sampler_index": "DPM++ SDE Karras",
        "restore_faces": False,
    },
}  # fmt: skip


def txt2img(job: dict) -> dict:
    """The seed's worker's answer: one base64 image of 540 KB, its info and parameters."""
    payload = job["input"]["payload"]
    image = base64.b64encode(random.Random(payload["seed"]).randbytes(405_000)).decode()
    info = {"prompt": payload["prompt"], "seed": payload["seed"], "width": payload["width"]}
    return {"images": [image], "info": json.dumps(info), "parameters": payload}


def lone_surrogate(job: dict) -> dict:
    return {"text": "\ud800"}


def fails_with_a_huge_output(job: dict) -> dict:
    return {"error": "it broke", "dump": "x" * job["input"]["size"]}


EXPECTED = txt2img({"input": SEED_INPUT})


@pytest.fixture
def owner():
    """A user whose notification webhook signs: their callbacks are signed with it."""
    user = get_user_model().objects.create_user("big@example.com", "big@example.com", "pw")
    with Receiver() as inbox:
        hook, secret = notification.save(user, inbox.url, hooks.SecretChange("generate"))
        user.token = ApiToken.issue(user, "sdk")[1]
        user.secret = hook.secret
        yield user


@pytest.fixture
def sdk(live_server, owner):
    import runpod

    runpod.api_key, runpod.endpoint_url_base = owner.token, f"{live_server.url}/v2"
    return runpod


def test_the_seeds_job_returns_its_540_kb_image_and_its_callback_carries_it_signed(
    sdk, owner, processes
):
    """The seed's own job: a txt2img handler returning one base64 image of 540 KB
    completes, through /run and /runsync; its callback is the whole status JSON, signed
    as callbacks are, and what the hub keeps of it stays small."""
    Endpoint.objects.create(name="txt2img", handler=f"{__name__}.txt2img")
    processes("qcluster", name="deliveries")
    processes("runjobs", name="jobs")
    with Receiver() as rx:
        job = sdk.Endpoint("txt2img").run({"input": SEED_INPUT, "webhook": rx.url})
        assert job.output(timeout=90) == EXPECTED
        assert sdk.Endpoint("txt2img").run_sync(SEED_INPUT, timeout=90) == EXPECTED
        assert rx.wait_for(1, timeout=60), "no callback"
        [callback] = rx.requests
    body = Verifier(owner.secret).verify(callback.body, callback.headers)
    assert body == {
        "id": job.job_id, "status": "COMPLETED", "delayTime": body["delayTime"],
        "executionTime": body["executionTime"], "input": SEED_INPUT, "output": EXPECTED,
        "webhook": rx.url,
    }  # fmt: skip
    assert len(callback.body) > 540_000
    attempt = Attempt.objects.get(delivery__target_url=rx.url)
    assert attempt.succeeded and len(attempt.request_body) < 4 * 1024
    shown = json.loads(attempt.request_body)  # the status JSON with the image's preview
    assert shown["output"]["images"][0].endswith(f"… [{len(EXPECTED['images'][0]) + 2} bytes]")
    assert all(len(json.dumps(e.payload)) < 8 * 1024 for e in Event.objects.all())
    assert LargeValue.objects.count() == 1  # the image, once for all the events of both jobs


def test_a_10_mb_input_comes_back_as_a_10_mb_output_and_callback(sdk, owner, processes):
    """A 10 MB round trip: RunPod's /run limit as input, echoed whole as the output, the
    callback carrying both (20 MB), /status and /runsync answering it whole."""
    processes("qcluster", name="deliveries")
    processes("runjobs", name="jobs")
    big = {"data": "".join(random.Random(1).choices("abcdefgh", k=10 * MiB - 100))}
    with Receiver() as rx:
        job = sdk.Endpoint("echo").run({"input": big, "webhook": rx.url})
        assert job.output(timeout=120) == big
        assert rx.wait_for(1, timeout=120), "no callback"
        body = Verifier(owner.secret).verify(rx.requests[0].body, rx.requests[0].headers)
        assert body["input"] == big and body["output"] == big and body["status"] == "COMPLETED"
        assert sdk.Endpoint("echo").run_sync(big, timeout=120) == big
    assert len(Attempt.objects.get(delivery__target_url=rx.url).request_body) < 4 * 1024


def json_body(size: int) -> dict:
    """A run body whose input is `size` bytes of JSON."""
    return {"input": {"data": "x" * (size - len('{"data":""}'))}}


@pytest.mark.parametrize(("route", "limit"), [("run", 10 * MiB), ("runsync?wait=1000", 20 * MiB)])
def test_runpods_payload_limits_with_a_clear_400_or_413_above_them(api, route, limit):
    at_the_limit = api("POST", f"/v2/echo/{route}", json_body(limit))
    assert at_the_limit.status_code == 200
    over = api("POST", f"/v2/echo/{route}", json_body(limit + 1))
    assert over.status_code == 400 and over.json() == {
        "error": f"'input' is {limit + 1} bytes; the limit is {limit}.", "field": "input",
    }  # fmt: skip
    far_over = api("POST", f"/v2/echo/{route}", json_body(limit + 100 * 1024))
    assert far_over.status_code == 413
    assert far_over.json()["error"] == f"The request body is larger than {limit + 64 * 1024} bytes."
    assert Job.objects.count() == 1


def test_the_site_forms_keep_djangos_upload_limit(client):
    """Only the APIs read bodies past DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), each under
    its own limit; a form post past it is refused as ever."""
    response = client.post("/accounts/login/", {"username": "a", "password": "x" * 3 * MiB})
    assert response.status_code == 400


def test_an_output_with_a_lone_surrogate_fails_the_job_clearly(api):
    Endpoint.objects.create(name="surrogate", handler=f"{__name__}.lone_surrogate")
    job_id = submit(api, endpoint="surrogate", input={})
    assert runner.run(job_id) == "FAILED"  # before: the end's events refused it, stuck running
    assert "not valid Unicode" in Job.objects.get(pk=job_id).error


def test_a_failed_handlers_output_over_the_limit_is_left_out(api, settings):
    settings.JOB_PAYLOAD_LIMIT = 10_000
    Endpoint.objects.create(name="huge", handler=f"{__name__}.fails_with_a_huge_output")
    small, huge = (submit(api, endpoint="huge", input={"size": n}) for n in (100, 9_990))
    assert runner.run(small) == runner.run(huge) == "FAILED"
    assert Job.objects.get(pk=small).output == {"dump": "x" * 100}
    job = Job.objects.get(pk=huge)
    assert job.output is None and job.error == "it broke"

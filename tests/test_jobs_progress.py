"""RunPod's progress_update: a running handler reports progress, /status answers it as
the IN_PROGRESS job's `output` (and the job pages show it) until the job ends and its
real output replaces it; runpod-python's own progress_update is the hub's in a job's
process, so a RunPod handler file runs unchanged."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobs import progress, runner
from jobs.models import Endpoint, Job
from tests import test_jobs_e2e
from tests.conftest import db_thread
from tests.test_e2e_qcluster import wait_until
from tests.test_jobs_api import submit

pytestmark = pytest.mark.django_db(transaction=True)
processes = test_jobs_e2e.processes  # the fixture: real runjobs processes
token = test_jobs_e2e.token
RELEASE_WAIT = 60.0


def _release_of(job: dict) -> Path:
    """Wait (bounded) until the test creates the file named in the job's input."""
    release, deadline = Path(job["input"]["release"]), time.monotonic() + RELEASE_WAIT
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return release


def reports_progress(job: dict) -> str:
    """A handler using the hub's own progress_update."""
    progress.progress_update(job, {"step": 1, "of": 2})
    return f"done after {_release_of(job).read_text()}"


def reports_with_runpods(job: dict) -> str:
    """A handler using runpod-python's, already imported before the job's process began."""
    import runpod  # imported here: loading runpod takes seconds, only this test needs it

    runpod.serverless.progress_update(job, "50%")
    runpod.serverless.modules.rp_progress.progress_update(job, "75%")
    return _release_of(job).read_text()


def reports_too_much(job: dict) -> str:
    progress.progress_update(job, "x" * job["input"]["size"])
    return "never"


def reports_for_another_job(job: dict) -> str:
    try:
        progress.progress_update({"id": "someone-elses"}, 1)
    except ValueError as exc:
        return str(exc)
    return "reported"


def _endpoint(name: str, handler) -> str:
    Endpoint.objects.create(name=name, handler=f"{__name__}.{handler.__name__}")
    return name


def _running(job_id: str):
    """runner.run in a thread, as a job worker runs it."""
    thread = db_thread(runner.run, job_id)
    thread.start()
    return thread


def test_progress_shows_in_status_and_the_job_page_while_it_runs_then_the_output(
    api, ann, client, tmp_path
):
    name = _endpoint("progressing", reports_progress)
    release = tmp_path / "release"
    job_id = submit(api, endpoint=name, input={"release": str(release)})
    worker = _running(job_id)
    status = lambda: api("GET", f"/v2/{name}/status/{job_id}").json()  # noqa: E731
    assert wait_until(lambda: "output" in status(), timeout=30)
    body = status()
    assert body["status"] == "IN_PROGRESS" and body["output"] == {"step": 1, "of": 2}
    client.force_login(ann)
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert "<h2>Progress</h2>" in page and "&quot;step&quot;: 1" in page
    assert "&quot;step&quot;: 1" in client.get("/jobs/").content.decode()  # the list too
    release.write_text("the release")
    worker.join(60)
    body = status()
    assert body["status"] == "COMPLETED" and body["output"] == "done after the release"
    assert Job.objects.get(pk=job_id).progress is None  # the output replaced it
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert "<h2>Progress</h2>" not in page and "done after the release" in page


def test_runpods_own_progress_update_is_the_hubs_in_a_jobs_process(api, tmp_path):
    import runpod  # imported here: loading runpod takes seconds, only this test needs it

    original = runpod.serverless.progress_update
    name = _endpoint("runpodish", reports_with_runpods)
    release = tmp_path / "release"
    job_id = submit(api, endpoint=name, input={"release": str(release)})
    worker = _running(job_id)
    status = lambda: api("GET", f"/v2/{name}/status/{job_id}").json()  # noqa: E731
    assert wait_until(lambda: status().get("output") == "75%", timeout=30)
    assert status()["status"] == "IN_PROGRESS"
    release.write_text("finished")
    worker.join(60)
    body = status()
    assert body["status"] == "COMPLETED" and body["output"] == "finished"
    assert runpod.serverless.progress_update is original  # replaced in the job's process only


def test_progress_over_the_payload_limit_fails_the_handler_clearly(api, settings):
    settings.JOB_PAYLOAD_LIMIT = 1000
    name = _endpoint("chatty", reports_too_much)
    job_id = submit(api, endpoint=name, input={"size": 1000})
    assert runner.run(job_id) == "FAILED"
    job = Job.objects.get(pk=job_id)
    assert "A progress update is 1002 bytes; at most 1000 fit" in job.error
    assert job.progress is None


def test_progress_for_another_job_or_outside_a_job_is_refused():
    with pytest.raises(RuntimeError, match="call it from a handler the hub runs"):
        progress.progress_update({"id": "x"}, 1)


def test_a_handler_cannot_report_another_jobs_progress(api):
    name = _endpoint("meddling", reports_for_another_job)
    job_id = submit(api, endpoint=name, input={})
    assert runner.run(job_id) == "COMPLETED"
    output = Job.objects.get(pk=job_id).output
    assert (
        output
        == f"progress_update() was given job 'someone-elses'; this process runs job {job_id!r}."
    )


@pytest.mark.parametrize("handler", ["handler", "imported_handler"])
def test_a_runpod_handler_file_reports_progress_through_the_stock_sdk(
    live_server, token, processes, tmp_path, handler
):
    """tests/runpod_progress_worker.py, a RunPod worker's file, runs in real runjobs; the
    stock runpod client reads the IN_PROGRESS status with its progress, then the output."""
    import runpod

    Endpoint.objects.create(name="worker", handler=f"tests.runpod_progress_worker.{handler}")
    processes("runjobs", name="jobs")
    runpod.api_key, runpod.endpoint_url_base = token, f"{live_server.url}/v2"
    release = tmp_path / "release"
    job = runpod.Endpoint("worker").run({"release": str(release), "prompt": "astronaut"})
    status = lambda: job.rp_client.get(f"worker/status/{job.job_id}")  # noqa: E731
    reported = "50%" if handler == "handler" else {"percent": 50}
    assert wait_until(lambda: status().get("output") == reported, timeout=60)
    assert status()["status"] == "IN_PROGRESS"
    release.touch()
    output = job.output(timeout=60)
    assert output == ({"released": True, "prompt": "astronaut"} if handler == "handler"
                      else {"released": True})  # fmt: skip
    assert status()["output"] == output and status()["status"] == "COMPLETED"

"""RunPod's worker protocol, called as runpod-python calls it (the Django test client):
worker keys, job-take, job-done, job-stream, ping, job-stop, and a lost worker's job."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from hooks.models import Event
from jobs import remote, runner
from jobs.models import Endpoint, Job, RemoteWorker, WorkerKey

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_long_poll(settings):
    settings.JOB_TAKE_WAIT = 0


@pytest.fixture
def gpu():
    """An endpoint only remote workers serve (no in-process handler)."""
    return Endpoint.objects.create(name="gpu", handler="")


@pytest.fixture
def key(gpu):
    return WorkerKey.issue("pod key", gpu)[1]


def worker(client, key, method, path, body=None, pod="pod-1"):
    url = f"/v2/gpu/{path.format(pod=pod)}"
    headers = {"HTTP_AUTHORIZATION": key} if key else {}
    if method == "GET":
        return client.get(url, **headers)
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data=data, content_type="application/x-www-form-urlencoded", **headers)


def queued(user, endpoint, **fields) -> Job:
    from jobs import lifecycle

    return lifecycle.submit(Job(endpoint=endpoint, user=user, input={"prompt": "hi"}, **fields))


def take(client, key, pod="pod-1", in_progress="0"):
    path = "job-take/{pod}?&job_in_progress=" + in_progress
    return worker(client, key, "GET", path, pod=pod)


def started_long_ago(job: Job) -> None:
    """Past the moment in which a second take of the same pod may still be on its way."""
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=30))


def test_a_key_is_stored_hashed_and_shown_once(gpu):
    stored, raw = WorkerKey.issue("k", gpu)
    assert raw.startswith("whw_") and raw not in json.dumps(
        list(WorkerKey.objects.values()), default=str
    )
    assert WorkerKey.authenticate(raw) == stored


@pytest.mark.parametrize("bad", [None, "whw_wrong", "user-token", "revoked", "other-endpoint"])
def test_a_bad_key_gets_401_and_takes_nothing(client, ann, gpu, bad):
    job = queued(ann, gpu)
    raw = {
        None: None,
        "whw_wrong": "whw_wrong",
        "user-token": ApiToken.issue(ann, "mine")[1],
        "revoked": WorkerKey.issue("old", gpu)[1],
        "other-endpoint": WorkerKey.issue("echo only", Endpoint.objects.get(name="echo"))[1],
    }[bad]
    WorkerKey.objects.filter(name="old").update(revoked_at=timezone.now())
    assert take(client, raw).status_code == 401
    job.refresh_from_db()
    assert job.status == Job.Status.IN_QUEUE and job.worker is None
    assert not RemoteWorker.objects.exists()


def test_an_empty_queue_is_204(client, key):
    assert take(client, key).status_code == 204


def test_a_take_claims_the_oldest_job_once_and_tells_of_its_start(client, ann, gpu, key):
    first, second = queued(ann, gpu), queued(ann, gpu)
    answer = take(client, key)
    assert answer.status_code == 200 and answer.json() == {
        "id": first.id,
        "input": {"prompt": "hi"},
    }
    first.refresh_from_db()
    assert first.status == Job.Status.IN_PROGRESS and first.worker.pod_id == "pod-1"
    assert Event.objects.filter(type="job.started", payload__job__id=first.id).count() == 1
    assert take(client, key, pod="pod-2").json()["id"] == second.id
    assert take(client, key, pod="pod-3").status_code == 204


def test_a_batch_take_hands_out_a_list(client, ann, gpu, key):
    ids = {queued(ann, gpu).id for _ in range(3)}
    answer = worker(client, key, "GET", "job-take-batch/{pod}?&batch_size=2&job_in_progress=0")
    taken = answer.json()
    assert len(taken) == 2 and {job["id"] for job in taken} < ids
    assert worker(client, key, "GET", "job-take-batch/{pod}?&batch_size=0").status_code == 400


def test_a_key_for_every_endpoint_takes_from_any(client, ann, gpu):
    job = queued(ann, gpu)
    assert take(client, WorkerKey.issue("all", None)[1]).json()["id"] == job.id


def test_the_hubs_own_runner_leaves_a_remote_only_endpoints_jobs(ann, gpu):
    job = queued(ann, gpu)
    assert runner.run(job.id) is None
    job.refresh_from_db()
    assert job.status == Job.Status.IN_QUEUE


def test_a_result_completes_the_job_once(client, ann, gpu, key, receiver):
    job = queued(ann, gpu, webhook=receiver.url)
    take(client, key)
    done = "job-done/{pod}/" + job.id + "?&isStream=false"
    assert worker(client, key, "POST", done, {"output": {"image": "x"}}).json()["accepted"]
    assert not worker(client, key, "POST", done, {"output": "again"}).json()["accepted"]
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED and job.output == {"image": "x"}
    assert Event.objects.filter(type="job.finished", payload__job__id=job.id).count() == 1
    callback = Event.objects.get(type="job.callback")
    assert callback.payload["output"] == {"image": "x"}


def test_an_error_fails_the_job_with_the_sdks_error(client, ann, gpu, key):
    job = queued(ann, gpu)
    take(client, key)
    error = json.dumps({"error_type": "<class 'ValueError'>", "error_message": "bad"})
    worker(client, key, "POST", "job-done/{pod}/" + job.id + "?&isStream=false", {"error": error})
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and json.loads(job.error)["error_message"] == "bad"


def test_a_result_for_a_job_the_worker_does_not_hold_is_404(client, ann, gpu, key):
    job = queued(ann, gpu)
    take(client, key, pod="pod-1")
    answer = worker(client, key, "POST", "job-done/{pod}/" + job.id + "?&isStream=false",
                    {"output": 1}, pod="pod-2")  # fmt: skip
    assert answer.status_code == 404
    job.refresh_from_db()
    assert job.status == Job.Status.IN_PROGRESS and job.output is None


def test_a_result_over_the_payload_limit_is_refused(client, ann, gpu, key, settings):
    settings.JOB_PAYLOAD_LIMIT = 100
    job = queued(ann, gpu)
    take(client, key)
    done = "job-done/{pod}/" + job.id + "?&isStream=false"
    answer = worker(client, key, "POST", done, {"output": "x" * 200})
    assert answer.status_code == 400 and "limit is 100" in answer.json()["error"]  # RunPod's
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.output is None


def test_stream_chunks_reach_stream(client, api, ann, gpu, key):
    job = queued(ann, gpu)
    take(client, key)
    for word in ("a", "b"):
        worker(client, key, "POST", "job-stream/{pod}/" + job.id + "?&isStream=false",
               {"output": word})  # fmt: skip
    stream = api("GET", f"/v2/gpu/stream/{job.id}").json()
    assert stream == {"status": "IN_PROGRESS", "stream": [{"output": "a"}, {"output": "b"}]}
    worker(client, key, "POST", "job-done/{pod}/" + job.id + "?&isStream=true", {"output": []})
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED and job.output == []


def test_a_pinging_worker_counts_in_health(client, api, key):
    assert api("GET", "/v2/gpu/health").json()["workers"] == {"idle": 0, "running": 0}
    assert worker(client, key, "GET", "ping/{pod}?job_id=&runpod_version=1").status_code == 200
    assert api("GET", "/v2/gpu/health").json()["workers"] == {"idle": 1, "running": 0}


def test_a_lost_workers_job_goes_back_to_the_queue(client, ann, gpu, key):
    job = queued(ann, gpu)
    take(client, key, pod="gone")
    RemoteWorker.objects.filter(pod_id="gone").update(
        seen_at=timezone.now() - remote.lost_after() - timedelta(seconds=1)
    )
    assert take(client, key, pod="second").json()["id"] == job.id
    job.refresh_from_db()
    assert job.status == Job.Status.IN_PROGRESS and job.worker.pod_id == "second"
    [(at, text)] = job.history_rows
    assert "'gone' (key 'pod key') was lost: not seen since" in text and "(1 of 3)" in text


def test_a_take_holding_nothing_gives_back_the_job_lost_on_the_way(client, ann, gpu, key):
    """The take's answer never reached the worker: it keeps pinging and asks for work
    with job_in_progress=0, so the job it never got runs again at once, not never."""
    job = queued(ann, gpu)
    take(client, key)
    started_long_ago(job)
    assert take(client, key, in_progress="1").status_code == 204  # it does hold one
    job.refresh_from_db()
    assert job.status == Job.Status.IN_PROGRESS and not job.history
    assert take(client, key, in_progress="0").json()["id"] == job.id  # given back, taken again
    job.refresh_from_db()
    assert job.status == Job.Status.IN_PROGRESS and job.worker.pod_id == "pod-1"
    assert "asked for work without it (job_in_progress=0)" in job.history_rows[0][1]


def test_a_job_just_taken_is_not_given_back_by_a_take_on_its_way(client, ann, gpu, key):
    job = queued(ann, gpu)
    take(client, key)
    assert take(client, key, in_progress="0").status_code == 204
    job.refresh_from_db()
    assert job.status == Job.Status.IN_PROGRESS and not job.history


def test_a_job_whose_workers_are_lost_too_often_fails_and_says_why(
    client, api, ann, gpu, key, settings
):
    settings.JOB_REMOTE_REQUEUES = 1
    job = queued(ann, gpu)
    for _ in range(2):
        assert take(client, key).json()["id"] == job.id
        started_long_ago(job)
        remote.forgotten(RemoteWorker.objects.get(pod_id="pod-1"))
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "lost 2 times" in job.error
    assert [text.endswith("Failed.") for _, text in job.history_rows] == [False, True]
    assert Event.objects.filter(type="job.finished", payload__job__id=job.id).exists()
    assert api("GET", f"/v2/gpu/status/{job.id}").json()["status"] == "FAILED"


def test_the_job_page_shows_its_history(client, ann, gpu, key):
    job = queued(ann, gpu)
    take(client, key)
    started_long_ago(job)
    take(client, key, pod="pod-1", in_progress="0")
    client.force_login(ann)
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert 'id="history"' in page and "asked for work without it" in page


def test_workers_unseen_for_a_day_are_forgotten_unless_they_hold_a_running_job(
    client, ann, gpu, key, settings
):
    from jobs import maintenance

    queued(ann, gpu)
    take(client, key, pod="busy")
    for pod in ("idle", "recent"):
        take(client, key, pod=pod)
    old = timezone.now() - timedelta(days=2)
    RemoteWorker.objects.exclude(pod_id="recent").update(seen_at=old)
    settings.JOB_REMOTE_WORKER_LOST = 3 * 86400  # the busy one's job is not reclaimed here
    assert maintenance.sweep()["forgotten"] == 1
    assert set(RemoteWorker.objects.values_list("pod_id", flat=True)) == {"busy", "recent"}


def test_a_cancelled_job_is_in_the_stop_channel(client, api, ann, gpu, key):
    job = queued(ann, gpu)
    assert worker(client, key, "GET", "job-stop/{pod}?").status_code == 204
    take(client, key)
    api("POST", f"/v2/gpu/cancel/{job.id}")
    assert worker(client, key, "GET", "job-stop/{pod}?").json() == {"jobsToStop": [job.id]}


def test_the_admin_makes_a_key_shown_once_and_revokes_it(admin_client, gpu):
    page = admin_client.post(
        "/admin/jobs/workerkey/add/", {"name": "gpu box", "endpoint": gpu.pk}, follow=True
    )
    made = WorkerKey.objects.get(name="gpu box")
    shown = page.content.decode().split("<code id='shown-secret'>")[1].split("</code>")[0]
    assert shown.startswith(made.hint) and WorkerKey.authenticate(shown) == made
    assert (
        shown not in admin_client.get(f"/admin/jobs/workerkey/{made.pk}/change/").content.decode()
    )
    admin_client.post("/admin/jobs/workerkey/", {"action": "revoke", "_selected_action": [made.pk]})
    assert WorkerKey.authenticate(shown) is None


def test_the_endpoint_page_shows_the_lines_to_paste_and_live_workers(
    admin_client, client, gpu, key
):
    take(client, key, pod="box-7")
    page = admin_client.get(f"/admin/jobs/endpoint/{gpu.pk}/change/").content.decode()
    assert "RUNPOD_WEBHOOK_GET_JOB=" in page and "/v2/gpu/job-take/$ID?" in page
    assert "box-7" in page and key not in page


def test_queue_start_is_sent_before_the_first_take_gets_its_job(client, ann, gpu, key):
    """As for the hub's own workers: the take that finds the hub idle sends Queue Start
    and hands out the job only once it answered; an idle poll sends nothing."""
    from hooks import slots
    from hooks.tools.receiver import Receiver, Reply
    from jobs.models import QueueState

    with Receiver() as start_rx:
        start_rx.respond = lambda request: Reply(200)
        slots.save("queue_start", start_rx.url)
        assert take(client, key).status_code == 204
        assert not start_rx.requests and QueueState.load().state == "idle"
        job = queued(ann, gpu)
        assert take(client, key).json()["id"] == job.id
        assert len(start_rx.requests) == 1 and QueueState.load().state == "busy"


def test_an_idle_look_at_the_queue_is_one_query(client, gpu, key, django_assert_num_queries):
    take(client, key)
    found = RemoteWorker.objects.get()
    with django_assert_num_queries(1):
        assert remote.take(found, gpu, 1) == []


def test_the_sweeper_requeues_a_lost_workers_job(client, ann, gpu, key):
    from jobs import maintenance

    job = queued(ann, gpu)
    take(client, key, pod="gone")
    RemoteWorker.objects.update(seen_at=timezone.now() - remote.lost_after() - timedelta(seconds=1))
    maintenance.sweep()
    job.refresh_from_db()
    assert job.status == Job.Status.IN_QUEUE and job.worker is None and job.started_at is None


def test_an_endpoint_may_have_no_handler_remote_workers_only():
    from jobs.forms import EndpointForm

    form = EndpointForm({"name": "remote-only", "handler": "", "active": True})
    assert form.is_valid(), form.errors
    assert not EndpointForm({"name": "x", "handler": "no.such.thing", "active": True}).is_valid()


def test_progress_update_shows_in_status_and_does_not_end_the_job(client, api, ann, gpu, key):
    job = queued(ann, gpu)
    take(client, key)
    done = "job-done/{pod}/" + job.id + "?&isStream=false"
    worker(client, key, "POST", done, {"status": "IN_PROGRESS", "output": "50%"})
    status = api("GET", f"/v2/gpu/status/{job.id}").json()
    assert status["status"] == "IN_PROGRESS" and status["output"] == "50%"
    worker(client, key, "POST", done, {"output": "done"})
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED and job.output == "done" and job.progress is None


def test_a_burst_spreads_over_concurrent_takers_with_no_job_taken_twice(ann, gpu):
    from tests.conftest import db_thread

    jobs = {queued(ann, gpu).id for _ in range(40)}
    key = WorkerKey.issue("burst", gpu)[0]
    takers = [remote.seen(key, f"pod-{n}") for n in range(5)]
    taken: list[tuple[str, str]] = []

    def drain(worker: RemoteWorker) -> None:
        while batch := remote.take(worker, gpu, 2):
            taken.extend((worker.pod_id, job.id) for job in batch)

    threads = [db_thread(drain, worker) for worker in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [job_id for _, job_id in taken]
    assert sorted(ids) == sorted(jobs)  # each job once
    assert Job.objects.filter(status=Job.Status.IN_PROGRESS).count() == len(jobs)
    holders = dict(Job.objects.values_list("pk", "worker__pod_id"))
    assert all(holders[job_id] == pod for pod, job_id in taken)


def test_idle_takes_held_open_are_bounded_per_process(client, gpu, key, settings):
    """A worker past JOB_TAKE_HOLDERS waiting takes gets 429 (runpod-python debounces
    5 s), not a web thread."""
    from jobs import worker_api

    settings.JOB_TAKE_HOLDERS, settings.JOB_TAKE_WAIT = 1, 0.3
    with worker_api.holding() as room:
        assert room
        assert take(client, key).status_code == 429
    assert take(client, key).status_code == 204

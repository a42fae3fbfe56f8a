"""SwarmUI's server hooks: Queue Start/End (blocking, once per transition), Every Job
and Manual Job templates."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

import hooks
from hooks import slots
from hooks.models import Delivery
from hooks.tools.receiver import Receiver, Reply
from hooks.worker.attempt import deliver_due
from jobs import events, lifecycle, queue, runner
from jobs.models import Endpoint, Job, QueueState
from tests.conftest import db_thread
from tests.test_e2e_qcluster import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


@pytest.fixture
def user():
    return User.objects.create_user("q@example.com", "q@example.com", "pw")


def run_all(jobs: list[Job]) -> None:
    """Each job on a worker thread of its own, all at once."""
    workers = [db_thread(runner.run, j.id) for j in jobs]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)


def new_job(user, endpoint="echo", **fields) -> Job:
    fields.setdefault("input", {"prompt": "cat", "steps": 3})
    return lifecycle.submit(Job(endpoint=Endpoint.objects.get(name=endpoint), user=user, **fields))


@pytest.fixture
def fast_end():
    QueueState.load()
    QueueState.objects.filter(pk=1).update(queue_end_delay=0.2)


@pytest.fixture
def ticker():
    """The queue's ticker, as `runjobs` runs it beside its job workers."""
    stop = threading.Event()
    thread = threading.Thread(target=queue.run_ticker, args=(stop,))
    thread.start()
    yield thread
    stop.set()
    thread.join(30)


def test_queue_start_blocks_the_job_until_the_hook_returns(user, fast_end, ticker):
    release = threading.Event()
    with Receiver() as start_rx, Receiver() as end_rx:
        start_rx.respond = lambda request: release.wait(10) and Reply(200)
        slots.save("queue_start", start_rx.url)
        slots.save("queue_end", end_rx.url)
        job = new_job(user)
        worker = db_thread(runner.run, job.id)
        worker.start()
        assert start_rx.wait_for(1)
        time.sleep(0.3)  # the hook is being held: the job must not start meanwhile
        assert Job.objects.get(pk=job.id).status == "IN_QUEUE"
        assert QueueState.load().state == "starting"
        answered = time.time()
        release.set()
        worker.join(10)
        job.refresh_from_db()
        assert job.status == "COMPLETED" and job.started_at.timestamp() >= answered
        assert end_rx.wait_for(1, timeout=5)  # after the delay, nothing left: Queue End
        assert wait_until(lambda: QueueState.load().state == "idle")  # once it returned
        assert (
            json.loads(start_rx.requests[0].body) == {}
            and json.loads(end_rx.requests[0].body) == {}
        )


def test_each_transition_hooks_once_with_concurrent_workers(user, fast_end, ticker):
    with Receiver() as start_rx, Receiver() as end_rx:
        slots.save("queue_start", start_rx.url)
        slots.save("queue_end", end_rx.url)
        run_all([new_job(user) for _ in range(6)])
        assert end_rx.wait_for(1, timeout=5)
        time.sleep(0.5)  # give a wrong second Queue End the chance to show up
        assert len(start_rx.requests) == 1 and len(end_rx.requests) == 1
        # A second burst is a second transition: once more each.
        run_all([new_job(user) for _ in range(3)])
        assert end_rx.wait_for(2, timeout=5)
        assert len(start_rx.requests) == 2 and len(end_rx.requests) == 2


def test_a_job_arriving_during_the_queue_end_delay_starts_at_once(user):
    """The delay is the ticker's, not a job worker's: the worker that ran A is free at
    once; B, arriving during the delay, starts without a Queue End or Queue Start between
    the two; Queue End comes once, when the ticker finds the delay passed after B."""
    QueueState.load()
    QueueState.objects.filter(pk=1).update(queue_end_delay=30)
    with Receiver() as start_rx, Receiver() as end_rx:
        slots.save("queue_start", start_rx.url)
        slots.save("queue_end", end_rx.url)
        first = new_job(user)
        assert runner.run(first.id) == "COMPLETED"
        # Its worker is back, the queue still busy, and nothing said it ended.
        assert QueueState.load().state == "busy" and end_rx.requests == []
        a_done = QueueState.load().last_job_activity
        assert not queue.tick()  # the ticker: the delay has not passed
        second = new_job(user)
        assert runner.run(second.id) == "COMPLETED"
        second.refresh_from_db()
        assert second.started_at < a_done + timedelta(seconds=30)  # within A's delay
        assert len(start_rx.requests) == 1 and end_rx.requests == []  # one busy stretch
        b_done = QueueState.load().last_job_activity
        assert not queue.tick(now=b_done + timedelta(seconds=29.9))  # it counts from B's end
        assert queue.tick(now=b_done + timedelta(seconds=30))
        assert not queue.tick(now=b_done + timedelta(seconds=60))  # sent once
    assert QueueState.load().state == "idle"
    assert [r.headers["X-Webhookhub-Event"] for r in end_rx.requests] == ["swarm.queue_end"]


def test_the_queue_end_waits_for_queued_work_and_a_new_job_waits_for_queue_end(user):
    """Queued work keeps the queue busy past its delay; while Queue End is being sent, a
    new job waits for it to return, then opens the queue again with Queue Start."""
    QueueState.load()
    QueueState.objects.filter(pk=1).update(queue_end_delay=0)
    release, order = threading.Event(), []
    with Receiver() as start_rx, Receiver() as end_rx:
        start_rx.respond = lambda request: order.append("start") or Reply(200)
        end_rx.respond = lambda request: release.wait(10) and (order.append("end") or Reply(200))
        slots.save("queue_start", start_rx.url)
        slots.save("queue_end", end_rx.url)
        assert runner.run(new_job(user).id) == "COMPLETED"
        waiting = new_job(user)
        assert not queue.tick()  # a job is queued: not the end
        Job.objects.filter(pk=waiting.pk).update(status="CANCELLED")
        ending = db_thread(queue.tick)
        ending.start()
        assert end_rx.wait_for(1)  # Queue End is being sent, held by its receiver
        late = new_job(user)
        worker = db_thread(runner.run, late.id)
        worker.start()
        assert not start_rx.wait_for(2, timeout=0.5)  # the job waits meanwhile
        assert Job.objects.get(pk=late.pk).status == "IN_QUEUE"
        release.set()
        ending.join(10)
        worker.join(10)
    assert order == ["start", "end", "start"]
    assert Job.objects.get(pk=late.pk).status == "COMPLETED"


def test_a_failing_queue_start_hook_is_recorded_and_does_not_wedge_the_queue(user, fast_end):
    with Receiver() as gone:
        url = gone.url
    slots.save("queue_start", url)  # nobody listens there
    job = new_job(user)
    assert runner.run(job.id) == "COMPLETED"
    failed = Delivery.objects.get(event__type="swarm.queue_start")
    assert failed.status == "failed" and "Could not connect" in failed.last_error


def test_every_and_manual_job_templates(user, receiver):
    every = slots.save(
        "every_job",
        receiver.url,
        '{"text": "%id% on %endpoint%: %status%, prompt %prompt%, out %output%"}',
    )
    manual = slots.save("manual_job", receiver.url, "")
    assert manual.data_template == "{}"  # SwarmUI: blank data sends {}
    normal = new_job(user)
    runner.run(normal.id)
    by_hand = new_job(user, webhooks_mode="manual")
    runner.run(by_hand.id)
    quiet = new_job(user, webhooks_mode="none")
    runner.run(quiet.id)
    deliver_due()
    bodies = [(r.headers["X-Webhookhub-Hook"], json.loads(r.body)) for r in receiver.requests]
    every_bodies = [b for hook, b in bodies if hook == str(every.pk)]
    manual_bodies = [b for hook, b in bodies if hook == str(manual.pk)]
    assert len(every_bodies) == 2 and manual_bodies == [{}]
    for text in (b["text"] for b in every_bodies):
        head, out = text.split(", out ")
        assert head.endswith("on echo: COMPLETED, prompt cat")
        assert json.loads(out) == {"prompt": "cat", "steps": 3}  # (key order is the database's)
    assert {b["text"].split(" ")[0] for b in every_bodies} == {normal.id, by_hand.id}


def test_server_configuration_shows_the_six_hooks_and_the_delay(admin_client):
    page = admin_client.get(reverse("hooks_server_configuration")).content.decode()
    for label in (
        "Queue Start",
        "Queue End",
        "Every Job",
        "Manual Job",
        "Server Start",
        "Server Shutdown",
    ):
        assert label in page
    assert "Queue End Delay" in page
    response = admin_client.post(
        reverse("hooks_server_configuration"),
        {"queue_start-url": "", "queue_start-data": "{bad", "settings-queue_end_delay": "2"},
    )
    assert "not valid JSON" in response.content.decode()
    assert QueueState.load().queue_end_delay == 1.0  # nothing saved
    admin_client.post(reverse("hooks_server_configuration"), {"settings-queue_end_delay": "2.5"})
    assert QueueState.load().queue_end_delay == 2.5


def test_every_job_and_manual_job_fire_only_for_completed_jobs(user, receiver):
    slots.save("every_job", receiver.url, '{"id": "%id%", "status": "%status%"}')
    slots.save("manual_job", receiver.url, '{"manual": "%id%"}')
    failed = new_job(user, endpoint="sleep", input={"seconds": -1}, webhooks_mode="manual")
    assert runner.run(failed.id) == "FAILED"
    cancelled = new_job(user, webhooks_mode="manual")
    lifecycle.cancel(cancelled)
    done = new_job(user, webhooks_mode="manual")
    assert runner.run(done.id) == "COMPLETED"
    deliver_due()
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert sorted(bodies, key=str) == [{"id": done.id, "status": "COMPLETED"}, {"manual": done.id}]


@pytest.mark.parametrize(
    "name, timeout", [("queue_start", 600), ("queue_end", 600), ("server_shutdown", 120)]
)
def test_blocking_hooks_wait_as_long_as_swarmui_does(name, timeout, settings):
    """SwarmUI waits up to 10 minutes for Queue Start/End and 2 for Server Shutdown:
    those are the slots' defaults (a slot webhook may set its own), not WEBHOOK_TIMEOUT."""
    from jobs.events import SHUTDOWN_WAIT

    settings.WEBHOOK_TIMEOUT = 0.5
    with Receiver() as slow:
        slow.respond = lambda request: time.sleep(1.5) or Reply(200)
        hook = slots.save(name, slow.url)
        assert hook.timeout == timeout
        hook.timeout = None  # a slot webhook saved before the defaults existed
        hook.save()
        cap = SHUTDOWN_WAIT if name == "server_shutdown" else None  # as runjobs sends it
        attempt = hooks.send_to_slot(name, timeout=cap)
    assert attempt.succeeded, attempt.error  # waited 1.5 s, beyond WEBHOOK_TIMEOUT


def test_the_slot_form_says_what_blank_data_sends(admin_client):
    page = admin_client.get(reverse("hooks_server_configuration")).content.decode()
    assert "Blank sends {}" in page  # SwarmUI's hooks
    assert "Blank sends the event&#x27;s own payload" in page  # the signup webhook


def test_stopping_job_workers_end_a_busy_queue_once_and_not_while_others_run(user):
    with Receiver() as rx:
        slots.save("queue_end", rx.url)
        QueueState.load()
        QueueState.objects.filter(pk=1).update(state="busy")
        elsewhere = new_job(user)
        Job.objects.filter(pk=elsewhere.pk).update(status="IN_PROGRESS")
        assert not queue.shut_down()  # another machine's worker still runs a job
        assert QueueState.load().state == "busy" and rx.requests == []
        Job.objects.filter(pk=elsewhere.pk).update(status="IN_QUEUE")  # given back
        assert queue.shut_down()
        assert not queue.shut_down()  # idle now: sent once
    assert QueueState.load().state == "idle"
    assert [r.headers["X-Webhookhub-Event"] for r in rx.requests] == ["swarm.queue_end"]


def test_every_job_has_swarmuis_user_name_and_request_time_tags(user, receiver, settings):
    """The date and time tags are the request's (SwarmUI's `RequestTime`: the job's
    submission), not its end."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    settings.TIME_ZONE = "Europe/Berlin"
    User.objects.filter(pk=user.pk).update(name="Ann Artist")
    template = ('{"who": "%user_name%", "when": "%year%-%month%-%day% %hour%:%minute%:%second%.'
                '%millisecond%", "names": "%day_name%, %month_name%", "odd": "%nope%"}')  # fmt: skip
    slots.save("every_job", receiver.url, template)
    job = new_job(user)
    assert runner.run(job.id) == "COMPLETED"
    submitted = datetime(2026, 12, 2, 4, 5, 6, 789000, tzinfo=ZoneInfo("UTC"))
    finished = datetime(2026, 12, 3, 8, 9, 10, 111000, tzinfo=ZoneInfo("UTC"))
    Job.objects.filter(pk=job.pk).update(created_at=submitted, completed_at=finished)
    Delivery.objects.all().delete()  # sent again below with the known times
    events.finished(Job.objects.get(pk=job.pk))
    deliver_due()
    body = json.loads(receiver.requests[-1].body)
    assert body == {"who": "Ann Artist", "when": "2026-12-02 05:05:06.789",
                    "names": "Wednesday, December", "odd": "%nope%"}  # fmt: skip


def test_every_job_has_swarmuis_prompt_hashes_model_and_loras(user, receiver):
    """As SwarmUI's OutpathFillHelper: QuickHash (the first 4 bytes of SHA-256, in hex)
    of the prompt and negative prompt, the model and LoRAs without folders' backslashes
    or their file extensions, LoRAs joined with `-`; a missing model is `unknown`."""
    import hashlib

    template = ('{"p": "%prompthash%", "n": "%negativeprompthash%", "m": "%model%", '
                '"l": "%loras%", "neg": "%negative_prompt%"}')  # fmt: skip
    slots.save("every_job", receiver.url, template)
    request = {"prompt": "a cat in a hat", "negativeprompt": "blurry",
               "model": "SDXL\\sd_xl_base_1.0.safetensors",
               "loras": ["styles/ink.safetensors", "detail.sft", "plain"]}  # fmt: skip
    assert runner.run(new_job(user, input=request).id) == "COMPLETED"
    assert runner.run(new_job(user, input={"prompt": ""}).id) == "COMPLETED"
    deliver_due()
    full, bare = (json.loads(r.body) for r in receiver.requests)
    if full["m"] == "unknown":
        full, bare = bare, full
    assert full == {"p": hashlib.sha256(b"a cat in a hat").hexdigest()[:8],
                    "n": hashlib.sha256(b"blurry").hexdigest()[:8],
                    "m": "SDXL/sd_xl_base_1.0", "l": "styles/ink-detail-plain",
                    "neg": "blurry"}  # fmt: skip
    empty = hashlib.sha256(b"").hexdigest()[:8]
    assert bare == {"p": empty, "n": empty, "m": "unknown", "l": "",
                    "neg": "%negative_prompt%"}  # fmt: skip


PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


def images(job: dict):
    """A generator handler producing two outputs, as a batch of two images."""
    import base64

    yield {"image": "data:image/png;base64," + base64.b64encode(PNG).decode(), "seed": 1}
    yield {"image": "/media/out 2.png", "seed": 2}


@pytest.fixture
def batch_endpoint():
    return Endpoint.objects.create(name="images", handler=f"{__name__}.images")


def bodies_of(receiver, hook) -> list[dict]:
    return [
        json.loads(r.body)
        for r in receiver.requests
        if r.headers["X-Webhookhub-Hook"] == str(hook.pk)
    ]


def test_every_job_fires_once_per_output_with_batch_tags_and_image(user, receiver, batch_endpoint):
    every = slots.save(
        "every_job",
        receiver.url,
        '{"n": "%number%", "b": "%batch_id%", "img": "%image%", "seed": "%output.seed%"}',
    )
    job = new_job(user, endpoint="images", input={})
    assert runner.run(job.id) == "COMPLETED"
    deliver_due()
    first, second = sorted(bodies_of(receiver, every), key=lambda b: b["n"])
    assert (first["n"], first["b"], first["seed"]) == ("1", "0", "1")
    assert first["img"].startswith("data:image/png;base64,")
    assert (second["n"], second["b"], second["seed"]) == ("2", "1", "2")
    assert second["img"] == "http://localhost:8000/media/out%202.png"


@pytest.mark.parametrize("mode, manual_count", [("manual", 2), ("manual_at_end", 1)])
def test_manual_fires_per_output_or_once_at_the_end(
    user, receiver, batch_endpoint, mode, manual_count
):
    every = slots.save("every_job", receiver.url, '{"every": "%number%"}')
    manual = slots.save("manual_job", receiver.url, '{"manual": "%id%", "n": "%number%"}')
    job = new_job(user, endpoint="images", input={}, webhooks_mode=mode)
    runner.run(job.id)
    deliver_due()
    assert len(bodies_of(receiver, every)) == 2
    manual_bodies = bodies_of(receiver, manual)
    assert len(manual_bodies) == manual_count
    if mode == "manual_at_end":  # no output of its own: per-output tags stay as they are
        assert manual_bodies == [{"manual": job.id, "n": "%number%"}]


@pytest.mark.parametrize(
    "given, kept",
    [("manual_at_end", "manual_at_end"), ("Manual At End", "manual_at_end"),
     ("Manual", "manual"), ("Normal", "normal"), ("None", "none")],
)  # fmt: skip
def test_the_api_accepts_manual_at_end_and_swarmuis_spellings(api, given, kept):
    from tests.test_jobs_api import submit

    job_id = submit(api, policy={"webhooks": given})
    assert Job.objects.get(pk=job_id).webhooks_mode == kept
    refused = api("POST", "/v2/echo/run", {"input": {}, "policy": {"webhooks": "sometimes"}})
    assert refused.status_code == 400 and "manual_at_end" in refused.json()["error"]


def outputs(job: dict):
    """A generator handler yielding the outputs its input lists."""
    yield from job["input"]["outputs"]


@pytest.fixture
def listed_endpoint():
    return Endpoint.objects.create(name="listed", handler=f"{__name__}.outputs")


def multipart_parts(request) -> list:
    """(name, filename, content type, content) of each part of a multipart request."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + request.headers["Content-Type"].encode() + b"\r\n\r\n" + request.body
    )
    return [(part.get_param("name", header="content-disposition"), part.get_filename(),
             part.get_content_type(), part.get_payload(decode=True))
            for part in message.iter_parts()]  # fmt: skip


def image_server(served: dict[str, tuple[bytes, str]]) -> Receiver:
    """A real HTTP server answering GET <path> with (bytes, content type), else 404."""

    def respond(request):
        if request.path not in served:
            return Reply(404)
        data, content_type = served[request.path]
        return Reply(200, {"Content-Type": content_type}, data)

    return Receiver(respond=respond)


def test_discord_image_uploads_as_swarmui_does_from_data_site_and_http_urls(
    user, receiver, listed_endpoint, settings
):
    """SwarmUI's multipart shape (Utilities.MultiPartFormContentDiscordImage): the image
    as the part `file`, named image.<ext> with its media type, then the filled template
    as `payload_json`; the image from a data URL, from the hub's own site (an output's
    site path) or from an http(s) URL, each fetched through the SSRF guard."""
    import base64
    import hashlib
    import hmac

    from hooks.models import Attempt

    served = {"/media/out%202.png": (b"site png bytes", "image/png"),
              "/art/remote.webp": (b"webp bytes", "image/webp")}  # fmt: skip
    with image_server(served) as images_rx:
        base = images_rx.url.removesuffix("/hook")
        settings.SITE_URL = base  # the hub's own site, serving its outputs
        every = slots.save(
            "every_job", receiver.url, '[discord_image]{"content": "seed %output.seed%"}'
        )
        every.secret = hooks.generate_secret()
        every.save()
        data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
        listed = [{"image": data_url, "seed": 1}, {"image": "/media/out 2.png", "seed": 2},
                  {"image": base + "/art/remote.webp", "seed": 3}]  # fmt: skip
        job = new_job(user, endpoint="listed", input={"outputs": listed})
        assert runner.run(job.id) == "COMPLETED"
        assert deliver_due() == 3
        assert sorted(r.path for r in images_rx.requests) == sorted(served)
        assert all(r.method == "GET" for r in images_rx.requests)
    uploads = {}
    for request in receiver.requests:
        assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
        (file, filename, media, image), (name, _, kind, payload) = multipart_parts(request)
        assert (file, name, kind) == ("file", "payload_json", "application/json")
        uploads[json.loads(payload)["content"]] = (filename, media, image, request)
    assert {seed: got[:3] for seed, got in uploads.items()} == {
        "seed 1": ("image.png", "image/png", PNG),
        "seed 2": ("image.png", "image/png", b"site png bytes"),
        "seed 3": ("image.webp", "image/webp", b"webp bytes"),
    }
    # Signed over the bytes sent (the spec's formula by hand: the standardwebhooks
    # library decodes a body as UTF-8 first, which an image is not).
    upload = uploads["seed 1"][3]
    key = base64.b64decode(every.secret.removeprefix("whsec_"))
    signed = f"{upload.headers['webhook-id']}.{upload.headers['webhook-timestamp']}.".encode()
    expected = base64.b64encode(hmac.new(key, signed + upload.body, hashlib.sha256).digest())
    assert f"v1,{expected.decode()}" in upload.headers["webhook-signature"].split(" ")
    shown = Attempt.objects.filter(delivery__webhook=every).values_list("request_body", flat=True)
    assert sorted(text.split("\n")[1] for text in shown) == sorted([  # no bytes in history
        f"[file: image.png, {len(PNG)} bytes]", "[file: image.png, 14 bytes]",
        "[file: image.webp, 10 bytes]"])  # fmt: skip


def test_discord_image_fetches_only_what_the_guard_and_the_cap_let_through(
    user, receiver, listed_endpoint, settings, monkeypatch
):
    """An output's own URL is guarded with a user's exemptions (none here: loopback is
    refused), the hub's own site with the operator's; an image over the cap, or an answer
    that is not an image, is not uploaded. The message still goes, as JSON, and its
    history says why the file is missing."""
    from hooks.models import Attempt
    from hooks.outgoing import images

    settings.WEBHOOK_USER_ALLOWED_NETWORKS = []
    monkeypatch.setattr(images, "IMAGE_CAP", 1000)
    served = {"/media/small.png": (b"x" * 1000, "image/png"),
              "/media/big.png": (b"x" * 1001, "image/png"),
              "/media/page": (b"<html></html>", "text/html")}  # fmt: skip
    with image_server(served) as images_rx:
        base = images_rx.url.removesuffix("/hook")
        settings.SITE_URL = base
        elsewhere = f"http://localhost:{images_rx.port}/media/small.png"  # not the site
        every = slots.save("every_job", receiver.url, '[discord_image]{"n": "%number%"}')
        listed = ["/media/small.png", "/media/big.png", "/media/page", elsewhere]
        job = new_job(user, endpoint="listed", input={"outputs": listed})
        assert runner.run(job.id) == "COMPLETED"
        assert deliver_due() == 4
        assert sorted(r.path for r in images_rx.requests) == sorted(served)  # not `elsewhere`
    kinds = {json.loads(multipart_parts(r)[1][3])["n"] if "multipart" in r.headers["Content-Type"]
             else json.loads(r.body)["n"]: r.headers["Content-Type"].split(";")[0]
             for r in receiver.requests}  # fmt: skip
    assert kinds == {"1": "multipart/form-data", "2": "application/json",
                     "3": "application/json", "4": "application/json"}  # fmt: skip
    shown = sorted(
        Attempt.objects.filter(delivery__webhook=every).values_list("request_body", flat=True)
    )
    assert "[file: image.png, 1000 bytes]" in shown[0]
    assert "[file not attached: The image is 1001 bytes; at most 1000 are uploaded.]" in shown[1]
    assert "[file not attached: The image's URL answered text/html, not an image.]" in shown[2]
    assert "file not attached: Refused 'localhost'" in shown[3] and "SSRF guard" in shown[3]

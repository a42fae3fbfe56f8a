"""Who is told of a job's change, and with what: jobs.events' decision table, pinned
row by row (a recipient dropped, added or reordered fails here), and what each change
returns as told being exactly what it emitted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

import hooks
from accounts import notification, presence
from hooks.models import Delivery, Event
from jobs import events
from jobs.models import Chunk, Endpoint, Job
from namespaces.models import Namespace

pytestmark = pytest.mark.django_db
User = get_user_model()
SERVER, USER, NAMESPACE = ("server",), ("server", "user"), ("namespace",)
SUMMARY = ["event", "job"]  # job.submitted / started / tagged: {"event", "job": {…}}
STATUS = ["delayTime", "executionTime", "id", "status"]
# Djinn's build (build/build.go's MarshalJSON), and the hub's endpoint and error.
BUILD = sorted(["id", "number", "user_id", "namespace_id", "manifest", "status", "output",
                "error", "tags", "pinned", "created_at", "started_at", "finished_at", "url",
                "tags_url", "objects_url", "variables_url", "jobs_url", "artifacts_url",
                "trigger", "endpoint", "user", "namespace"])  # fmt: skip
TAGGED = ["build", "tags", "url", "user"]  # Djinn's build.tagged
CALLBACK = sorted([*STATUS, "input", "output", "webhook"])
TIME = ["day", "day_name", "hour", "millisecond", "minute", "month", "month_name", "second",
        "year"]  # fmt: skip
REQUEST = ["loras", "model", "negativeprompthash", "prompthash"]  # SwarmUI's, of the input
FLAT = sorted([*STATUS, "input", "output", "endpoint", "prompt", "user_name", *REQUEST, *TIME])
PER_OUTPUT = sorted([*FLAT, "batch_id", "number"])  # Every Job, Manual Job per output
WITH_WEBHOOK = sorted([*PER_OUTPUT, "webhook"])  # the request's callback URL too


@pytest.fixture
def owner():
    return User.objects.create_user("ann@example.com", "ann@example.com", "pw", name="Ann")


@pytest.fixture
def acme(owner):
    return Namespace.objects.create(owner=owner, name="acme", path="acme")


def new_job(owner, **fields) -> Job:
    fields.setdefault("input", {"prompt": "hi"})
    return Job.objects.create(endpoint=Endpoint.objects.get(name="echo"), user=owner, **fields)


def finished(job: Job, status: str = "COMPLETED", output=None) -> Job:
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=status, output=output, started_at=now - timedelta(seconds=1), completed_at=now
    )
    job.refresh_from_db()
    return job


def table(job: Job, told: list[events.Notice]) -> list[tuple]:
    """One row per notice, in order: its type, audience, whose scope it is told in
    (the owner's, the job's namespace's, or none), its callback URL, and its payload's
    keys."""
    rows = []
    for notice in told:
        scope = (
            "owner" if notice.user == job.user
            else "namespace" if job.namespace and notice.namespace == job.namespace.key
            else None
        )  # fmt: skip
        assert notice.user is None or notice.namespace is None
        rows.append((notice.event_type, notice.audience, scope, notice.target_url,
                     sorted(notice.payload)))  # fmt: skip
    return rows


def test_a_namespaces_job_is_told_to_the_server_and_the_namespace_at_each_moment(
    owner, acme, settings
):
    job = new_job(owner, namespace=acme, number=1, tags=["nightly"], webhook="https://x.test/cb")
    for tell, change, name in [
        (events.submitted, events.SUBMITTED, "build.submitted"),
        (events.started, events.STARTED, "build.started"),
    ]:
        told = tell(job)
        assert table(job, told) == [
            (change, SERVER, "owner", None, SUMMARY),
            (name, NAMESPACE, "namespace", None, BUILD),
        ]
        assert told[0].payload["event"] == change.replace(".", "_")  # job_submitted, …
    [told, build] = events.tagged(job, ["urgent"], owner)
    assert table(job, [told, build]) == [
        (events.TAGGED, SERVER, "owner", None, [*SUMMARY, "tag"]),
        ("build.tagged", NAMESPACE, "namespace", None, TAGGED),
    ]
    assert told.payload == {"event": "job_tagged", "tag": "urgent", "job": {
        "id": job.id, "endpoint": "echo", "status": "IN_QUEUE", "tags": ["nightly"],
        "user": owner.pk}}  # fmt: skip
    assert build.payload["tags"] == [
        {"name": "urgent", "url": f"{settings.SITE_URL}/namespaces/acme/jobs/?tag=urgent"}
    ]
    assert build.payload["build"]["number"] == 1 and build.payload["build"]["status"] == "queued"
    assert build.payload["url"] == build.payload["build"]["url"]
    assert build.payload["user"]["id"] == owner.pk
    assert build.payload["build"]["namespace"] == acme.as_payload()


def test_tags_added_together_are_one_build_tagged_and_a_job_tagged_each(owner, acme):
    job = new_job(owner, namespace=acme, number=1)
    told = events.tagged(job, ["a", "b"], owner)
    assert [n.event_type for n in told] == [events.TAGGED, events.TAGGED, "build.tagged"]
    assert [t["name"] for t in told[-1].payload["tags"]] == ["a", "b"]


def test_a_pin_change_is_told_to_the_namespace_only_and_only_for_its_jobs(owner, acme):
    job = new_job(owner, namespace=acme, number=1)
    job.pinned = True
    [pinned] = events.pin_changed(job)
    assert (pinned.event_type, pinned.audience, sorted(pinned.payload)) == (
        "build.pinned",
        NAMESPACE,
        BUILD,
    )
    assert pinned.payload["pinned"] is True
    job.pinned = False
    assert events.pin_changed(job)[0].event_type == "build.unpinned"
    assert events.pin_changed(new_job(owner)) == []  # no namespace: no build


def test_a_finished_job_is_told_to_everyone_who_waits_for_its_end(owner, acme, settings):
    """Owner away with a signing notification webhook, a namespace, a callback URL and
    SwarmUI's manual mode with two produced outputs: every recipient, in order."""
    hook, _ = notification.save(owner, "https://me.test/hook", hooks.SecretChange("generate"))
    job = new_job(owner, namespace=acme, number=1, webhook="https://x.test/cb",
                  webhooks_mode=Job.Webhooks.MANUAL)  # fmt: skip
    Chunk.objects.bulk_create(Chunk(job=job, seq=i, output={"n": i}) for i in range(2))
    job = finished(job, output=[{"n": 0}, {"n": 1}])
    told = events.finished(job)
    assert table(job, told) == [
        (events.FINISHED, USER, "owner", None, SUMMARY),
        ("build.finished", NAMESPACE, "namespace", None, BUILD),
        (events.CALLBACK, (), "owner", "https://x.test/cb", CALLBACK),
        (events.EVERY_JOB, SERVER, None, None, WITH_WEBHOOK),
        (events.MANUAL_JOB, SERVER, None, None, WITH_WEBHOOK),
        (events.EVERY_JOB, SERVER, None, None, WITH_WEBHOOK),
        (events.MANUAL_JOB, SERVER, None, None, WITH_WEBHOOK),
    ]
    assert told[0].payload == {"event": "job_finished", "job": {
        "id": job.id, "name": "echo", "status": "COMPLETED",
        "url": f"{settings.SITE_URL}/jobs/{job.id}/", "output": job.output}}  # fmt: skip
    callback = told[2]
    assert callback.payload == job.status_json(with_input=True)
    assert callback.target_signer == hook  # the owner's secret signs it
    assert callback.target_schedule == tuple(settings.JOB_CALLBACK_SCHEDULE)
    assert [(n.payload["output"], n.payload["batch_id"]) for n in told[3:]] == [
        ({"n": 0}, 0), ({"n": 0}, 0), ({"n": 1}, 1), ({"n": 1}, 1)
    ]  # fmt: skip


def test_a_finished_job_tells_only_whom_it_concerns(owner):
    """Owner present (a page open), no namespace, no callback, no signing: the server alone; a failed
    job no SwarmUI hook; Manual At End one Manual Job after the Every Jobs; with
    SwarmUI's hooks off (none), none of them."""
    presence.beat(owner, "owners-page")
    notification.save(owner, "https://me.test/hook", hooks.SecretChange("remove"))
    failed = finished(new_job(owner, webhooks_mode=Job.Webhooks.MANUAL), status="FAILED")
    assert table(failed, events.finished(failed)) == [
        (events.FINISHED, SERVER, "owner", None, SUMMARY)
    ]
    at_end = finished(new_job(owner, webhooks_mode=Job.Webhooks.MANUAL_AT_END), output={"a": 1})
    assert table(at_end, events.finished(at_end)) == [
        (events.FINISHED, SERVER, "owner", None, SUMMARY),
        (events.EVERY_JOB, SERVER, None, None, PER_OUTPUT),
        (events.MANUAL_JOB, SERVER, None, None, FLAT),
    ]
    normal = finished(new_job(owner, webhook="https://x.test/cb"), output={"a": 1})
    told = events.finished(normal)
    assert table(normal, told) == [
        (events.FINISHED, SERVER, "owner", None, SUMMARY),
        (events.CALLBACK, (), "owner", "https://x.test/cb", CALLBACK),
        (events.EVERY_JOB, SERVER, None, None, WITH_WEBHOOK),
    ]
    assert told[1].target_signer is None  # unsigned
    quiet = finished(new_job(owner, webhooks_mode=Job.Webhooks.NONE), output={"a": 1})
    assert table(quiet, events.finished(quiet)) == [
        (events.FINISHED, SERVER, "owner", None, SUMMARY)
    ]


def test_what_a_change_returns_as_told_is_what_it_emitted_in_order(
    owner, acme, settings, monkeypatch
):
    hook, _ = notification.save(owner, "https://me.test/hook", hooks.SecretChange("generate"))
    job = finished(new_job(owner, namespace=acme, number=1, webhook="https://x.test/cb"),
                   output={"a": 1})  # fmt: skip
    emitted, emit, before = [], hooks.emit, Event.objects.count()  # the owner's user.signup
    monkeypatch.setattr(hooks, "emit", lambda *args, **kw: emitted.append(emit(*args, **kw)))
    told = events.finished(job)
    assert len(emitted) == Event.objects.count() - before == 4
    assert [(e.type, e.payload, e.user_id, e.namespace) for e in emitted] == [
        (n.event_type, n.payload, n.user and n.user.pk, n.namespace or "") for n in told
    ]
    away = Delivery.objects.filter(webhook=hook)  # a user never seen counts as away
    assert [delivery.event for delivery in away] == [emitted[0]]  # job.finished alone
    [callback] = Delivery.objects.filter(target_url="https://x.test/cb")
    assert callback.event == emitted[2] and callback.signed_by == hook
    assert callback.retry_schedule == list(settings.JOB_CALLBACK_SCHEDULE)

"""The job events of the catalog, SwarmUI's six server hooks (slots), and the one place
that decides who is told of a job's change and with what payload: `submitted`,
`started`, `tagged`, `pin_changed` and `finished` tell it and return what they told (a
namespace's job as Djinn's build: jobs.builds)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django import forms
from django.conf import settings

import hooks
from accounts.events import wants_notification
from accounts.notification import webhook_of
from hooks import NAMESPACE, SERVER, USER
from jobs import swarm
from jobs.builds import BUILD_EXAMPLE, QUEUED_EXAMPLE, TAGGED_EXAMPLE, build_payload, tagged_payload
from jobs.models import Job, QueueState

SUBMITTED, STARTED, FINISHED, TAGGED = "job.submitted", "job.started", "job.finished", "job.tagged"
CALLBACK = "job.callback"
# The same moments of a namespace's jobs, named as Djinn CI names its builds' events.
BUILD_EVENTS = {SUBMITTED: "build.submitted", STARTED: "build.started",
                FINISHED: "build.finished", TAGGED: "build.tagged"}  # fmt: skip
PINNED, UNPINNED = "build.pinned", "build.unpinned"
# The `event` their payloads carry (job.finished's is Open WebUI's, in finished_payload).
EVENT_NAMES = {SUBMITTED: "job_submitted", STARTED: "job_started", TAGGED: "job_tagged"}
QUEUE_START, QUEUE_END = "swarm.queue_start", "swarm.queue_end"
EVERY_JOB, MANUAL_JOB = "swarm.every_job", "swarm.manual_job"
SERVER_START, SERVER_SHUTDOWN = "swarm.server_start", "swarm.server_shutdown"

FINISHED_EXAMPLE = {
    "event": "job_finished",
    "job": {"id": "8f2c…", "name": "render", "status": "COMPLETED",
            "url": "https://hub.example.com/jobs/8f2c…", "output": "A red fox in the snow."},
}  # fmt: skip
JOB_EXAMPLE = {
    "event": "job_submitted",
    "job": {"id": "5f1c…", "endpoint": "echo", "status": "IN_QUEUE", "tags": [], "user": 1},
}
STATUS_EXAMPLE = {
    "id": "5f1c…", "status": "COMPLETED", "delayTime": 12, "executionTime": 340,
    "input": {"prompt": "hi"}, "output": {"prompt": "hi"}, "webhook": "https://example.com/done",
}  # fmt: skip
JOB_SCOPES = (SERVER, USER)  # a namespace's webhooks get its jobs as build.* events
FLAT_EXAMPLE = {"id": "5f1c…", "status": "COMPLETED", "endpoint": "echo", "output": {"prompt": "hi"},
                "prompt": "hi", "input": {"prompt": "hi"}, "user_name": "Ann",
                "prompthash": "8f434346", "negativeprompthash": "e3b0c442", "model": "unknown",
                "loras": "", "year": "2026",
                "month": "12", "month_name": "December", "day": "02", "day_name": "Wednesday",
                "hour": "05", "minute": "49", "second": "07", "millisecond": "123",
                "batch_id": 0, "number": 1}  # fmt: skip

TYPES = [
    (FINISHED, "A job finished (completed, failed, cancelled or timed out).", JOB_SCOPES,
     FINISHED_EXAMPLE, "{job[name]} finished: {job[status]} — {job[url]}"),
    (SUBMITTED, "A job was submitted.", JOB_SCOPES, JOB_EXAMPLE, "Job {job[id]} submitted to {job[endpoint]}"),
    (STARTED, "A job started running.", JOB_SCOPES, {**JOB_EXAMPLE, "event": "job_started"}, "Job {job[id]} started"),
    (TAGGED, "A tag was added to a job after its submission.", JOB_SCOPES,
     {**JOB_EXAMPLE, "event": "job_tagged", "tag": "urgent"}, "Job {job[id]} tagged {tag}"),
    ("build.submitted", "A job was submitted into a namespace (Djinn's build.submitted).",
     (NAMESPACE,), QUEUED_EXAMPLE, "Job #{number} submitted in {namespace[path]}"),
    ("build.started", "A namespace's job started running.", (NAMESPACE,),
     {**QUEUED_EXAMPLE, "status": "running", "started_at": BUILD_EXAMPLE["started_at"]},
     "Job #{number} started in {namespace[path]}"),
    ("build.finished", "A namespace's job finished: passed, failed, killed (cancelled) or "
     "timed out.", (NAMESPACE,), BUILD_EXAMPLE, "Job #{number} in {namespace[path]}: {status}"),
    ("build.tagged", "Tags were added to a namespace's job after its submission (one event "
     "for the tags added together).", (NAMESPACE,), TAGGED_EXAMPLE,
     "Job #{build[number]} in {build[namespace][path]} tagged"),
    (PINNED, "A member pinned a namespace's job.", (NAMESPACE,),
     {**BUILD_EXAMPLE, "pinned": True}, "Job #{number} in {namespace[path]} pinned"),
    (UNPINNED, "A member unpinned a namespace's job.", (NAMESPACE,), BUILD_EXAMPLE,
     "Job #{number} in {namespace[path]} unpinned"),
    (CALLBACK, "RunPod's per-job webhook: the job's status JSON, sent to the URL given with the job.",
     (SERVER,), STATUS_EXAMPLE, "Job {id} {status}"),
    (QUEUE_START, "The hub went from idle to having work (blocking).", (SERVER,),
     {"event": "queue_start"}, "Queue started"),
    (QUEUE_END, "The queue emptied and nothing ran for the Queue End Delay (blocking).", (SERVER,),
     {"event": "queue_end"}, "Queue ended"),
    (EVERY_JOB, "Once per output of a completed job: each chunk a generator handler yielded, or the "
     "one output (SwarmUI's Every Gen: never for a failed or cancelled job).",
     (SERVER,), FLAT_EXAMPLE,
     "Job {id} on {endpoint}: {status}"),
    (MANUAL_JOB, "SwarmUI's Manual Gen: per output of a completed job whose request set "
     "policy.webhooks to 'manual', once per job for 'manual_at_end'.",
     (SERVER,), FLAT_EXAMPLE, "Job {id} on {endpoint}: {status}"),
    (SERVER_START, "The job worker cluster came up.", (SERVER,), {"event": "server_start"}, "Server started"),
    (SERVER_SHUTDOWN, "The job worker cluster was told to stop: sent first, while its workers still "
     "run (waited for at most 2 minutes).", (SERVER,),
     {"event": "server_shutdown"}, "Server shutting down"),
]  # fmt: skip

# RunPod's callback: an attempt, then two retries 10 s apart; only HTTP 200 succeeds.
RUNPOD_CALLBACK_SCHEDULE = (0.0, 10.0, 10.0)
# SwarmUI's HTTP client waits up to 10 minutes for its blocking hooks (a receiver may
# unload models before the queue starts) and 2 minutes for Server Shutdown.
BLOCKING_WAIT, SHUTDOWN_WAIT = 600.0, 120.0
SLOTS = [
    ("queue_start", "Queue Start", QUEUE_START,
     "Blocks: no job starts anywhere until its request completes (waited for up to 10 minutes).",
     BLOCKING_WAIT),
    ("queue_end", "Queue End", QUEUE_END,
     "Blocks: sent once nothing is queued or running for the Queue End Delay; no job starts until "
     "it returns (waited for up to 10 minutes).", BLOCKING_WAIT),
    ("every_job", "Every Job", EVERY_JOB,
     "Once per output of every completed job (never a failed or cancelled one); %tag%s: %id%, "
     "%status%, %endpoint%, %output%, %batch_id%, %number%, %image%, %user_name%, %prompthash%, "
     "%negativeprompthash%, %model%, %loras%, %year% … %millisecond% (of the submission), "
     "input fields. Start the data with [discord_image] to upload the image to "
     "Discord.", None),
    ("manual_job", "Manual Job", MANUAL_JOB,
     "Per output of completed jobs whose request set policy.webhooks to 'manual'; once per job "
     "(no per-output tags) for 'manual_at_end'.", None),
    ("server_start", "Server Start", SERVER_START, "When the job workers come up.", None),
    ("server_shutdown", "Server Shutdown", SERVER_SHUTDOWN,
     "First, when the job workers are told to stop, while they still run (waited for at most "
     "2 minutes); then they stop, then Queue End.", SHUTDOWN_WAIT),
]  # fmt: skip


def register() -> None:
    for name, description, scopes, example, summary in TYPES:
        hooks.register_event_type(
            name, description, scopes=tuple(scopes), example=example, summary=summary,
            chat=finished_chat if name == FINISHED else None,
        )  # fmt: skip
    for name, label, event_type, help_text, timeout in SLOTS:
        hooks.register_slot(
            hooks.Slot(name=name, label=label, event_type=event_type, help=help_text,
                       blank_data="{}", timeout=timeout, follow_redirects=True)
        )  # fmt: skip
    hooks.register_slot_setting(
        hooks.SlotSetting(
            name="queue_end_delay",
            label="Queue End Delay (seconds)",
            field=lambda: forms.FloatField(
                min_value=0,
                max_value=3600,
                required=False,
                help_text="Default 1. How long the queue must stay empty; blank keeps it.",
            ),
            get=lambda: _state().queue_end_delay,
            set=_set_delay,
        )
    )


def _state():
    return QueueState.load()


def _set_delay(value: float | None) -> None:
    if value is None:
        return  # left blank: unchanged
    QueueState.load()
    QueueState.objects.filter(pk=1).update(queue_end_delay=value)


# Who is told of a job's change, and with what: one function per change, each telling
# its notices in order and returning them. lifecycle.py moves the job and calls one,
# inside the change's transaction (hooks.emit writes in the caller's: a rolled-back
# change sends nothing).


@dataclass(frozen=True)
class Notice:
    """One event a job's change emits: its type, its payload and whom it reaches, as
    hooks.emit's arguments (the webhooks of `audience`, scoped by `user` or
    `namespace`; `target_url`, a job's callback, is one delivery more)."""

    event_type: str
    payload: dict
    audience: tuple[str, ...]
    user: object = None
    namespace: str | None = None
    target_url: str | None = None
    target_signer: object = None
    target_schedule: tuple[float, ...] | None = None
    target_success_status: int | None = None


def submitted(job: Job) -> list[Notice]:
    """job.submitted to the server's webhooks, as the owner's event; a namespace's job
    is also build.submitted to the namespace's webhooks (started and tagged likewise)."""
    return _tell(job, _moment(job, SUBMITTED), *_build(job, SUBMITTED))


def started(job: Job) -> list[Notice]:
    return _tell(job, _moment(job, STARTED), *_build(job, STARTED))


def tagged(job: Job, tags: list[str], user) -> list[Notice]:
    """Tags `user` added together: job.tagged for each (`tag`); for a namespace's job one
    build.tagged with them all, as Djinn's."""
    told = [_moment(job, TAGGED, tag=tag) for tag in tags]
    if job.namespace_id and tags:
        payload = tagged_payload(job, tags, user)
        told.append(
            Notice(BUILD_EVENTS[TAGGED], payload, (NAMESPACE,), namespace=job.namespace.key)
        )
    return _tell(job, *told)


def pin_changed(job: Job) -> list[Notice]:
    """A namespace's job pinned or unpinned: build.pinned or build.unpinned, the build."""
    if not job.namespace_id:
        return []
    change = PINNED if job.pinned else UNPINNED
    return _tell(job, Notice(change, build_payload(job), (NAMESPACE,), namespace=job.namespace.key))


def finished(job: Job) -> list[Notice]:
    """job.finished (Open WebUI's notification) to the server's webhooks and, when the
    owner is away, to their notification webhook; build.finished to a namespace's; the
    status JSON to the job's callback URL (RunPod's webhook); and for a completed job
    SwarmUI's Every Job and Manual Job hooks."""
    return _tell(job, _end(job), *_build(job, FINISHED), *_callback(job), *_swarm(job))


def _tell(job: Job, *told: Notice) -> list[Notice]:
    """Emit each notice, about the job (its subject: a webhook that keeps order per
    subject receives a job's events one at a time, in order)."""
    subject = hooks.subject_of("job", job.pk)
    for notice in told:
        hooks.emit(
            notice.event_type,
            notice.payload,
            audience=notice.audience,
            user=notice.user,
            namespace=notice.namespace,
            target_url=notice.target_url,
            target_signer=notice.target_signer,
            target_schedule=notice.target_schedule,
            target_success_status=notice.target_success_status,
            subject=subject,
        )
    return list(told)


def _moment(job: Job, change: str, **extra) -> Notice:
    payload = {"event": EVENT_NAMES[change], "job": job_summary(job), **extra}
    return Notice(change, payload, (SERVER,), user=job.user)


def _build(job: Job, change: str) -> list[Notice]:
    """A namespace's job: the same moment as Djinn's build event, to its webhooks."""
    if not job.namespace_id:
        return []
    payload = build_payload(job)
    return [Notice(BUILD_EVENTS[change], payload, (NAMESPACE,), namespace=job.namespace.key)]


def _end(job: Job) -> Notice:
    path = f"/jobs/{job.id}/"  # the owner's page of it (the API's status needs a token)
    payload = finished_payload(
        job.id, job.endpoint.name, job.status, path, output=job.output, error=job.error
    )
    audience = (SERVER, USER) if wants_notification(job.user) else (SERVER,)
    return Notice(FINISHED, payload, audience, user=job.user)


def _callback(job: Job) -> list[Notice]:
    if not job.webhook:
        return []
    return [
        Notice(
            CALLBACK,
            job.status_json(with_input=True),
            (),  # no webhook but the URL; recorded as the owner's, for their Jobs page
            user=job.user,
            target_url=job.webhook,
            target_signer=callback_signer(job.user),
            target_schedule=callback_schedule(job),
            target_success_status=callback_success_status(job),
        )
    ]


def _swarm(job: Job) -> list[Notice]:
    """SwarmUI's Every Gen (and Manual Gen, for `manual`) once per produced output of a
    completed job: each chunk a generator handler yielded, or the one output; Manual At
    End once per job."""
    mode = job.webhooks_mode
    if job.status != Job.Status.COMPLETED or mode == Job.Webhooks.NONE:
        return []
    told = []
    for number, output in enumerate(produced_outputs(job)):
        values = flat(job, output=output, number=number)
        told.append(Notice(EVERY_JOB, values, (SERVER,)))
        if mode == Job.Webhooks.MANUAL:
            told.append(Notice(MANUAL_JOB, values, (SERVER,)))
    if mode == Job.Webhooks.MANUAL_AT_END:
        told.append(Notice(MANUAL_JOB, flat(job), (SERVER,)))
    return told


def produced_outputs(job: Job) -> list:
    chunks = list(job.chunks.values_list("output", flat=True))
    return chunks or [job.output]


def callback_signer(user):
    """Whose secret signs a job's callback: its owner's notification webhook when it
    signs, or nobody (unsigned, as RunPod sends it). The hub reads the secret at each
    attempt; it is never copied into the delivery.

    By design: RunPod signs nothing, and a job's callback URL is given per request,
    with no place for a secret. A user who turned on signing for their notification
    webhook already verifies that secret, so their callbacks become verifiable with
    it too; someone who did not gets RunPod's unsigned callback."""
    notification = webhook_of(user)
    return notification if notification and notification.secret else None


def callback_schedule(job: Job) -> tuple[float, ...]:
    """Seconds before each attempt of a job's callback. RunPod retries twice, 10 s apart:
    a job with RunPod's callback rule gets exactly that (three attempts, then failed);
    the hub's rule follows JOB_CALLBACK_SCHEDULE, by default those three and then the
    hub's own schedule ("0,10,10" makes it RunPod's schedule for every job)."""
    if job.callback_rule == Job.CallbackRule.RUNPOD:
        return RUNPOD_CALLBACK_SCHEDULE
    return tuple(settings.JOB_CALLBACK_SCHEDULE)


def callback_success_status(job: Job) -> int | None:
    """The one HTTP status that delivers a job's callback: 200 under RunPod's rule (its
    docs: a callback succeeds on HTTP 200); None under the hub's, where any 2xx does."""
    return 200 if job.callback_rule == Job.CallbackRule.RUNPOD else None


def job_summary(job) -> dict:
    return {"id": job.id, "endpoint": job.endpoint.name, "status": job.status,
            "tags": job.tags, "user": job.user_id}  # fmt: skip


def flat(job, *, output=None, number: int | None = None) -> dict:
    """SwarmUI-style template values: its input fields (the request's parameters), then
    the job's own fields, `user_name`, SwarmUI's tags of the request (`prompthash`,
    `negativeprompthash`, `model`, `loras`) and the parts of the time it was submitted
    (SwarmUI's request time). For one produced output (Every Job): that output, its
    `batch_id` (0, 1, …) and `number` (1, 2, …) within the job, and `image` when the
    output holds one."""
    request = {key: value for key, value in (job.input or {}).items() if isinstance(key, str)}
    values = dict(request)
    values.update(job.status_json(with_input=True))
    values["endpoint"] = job.endpoint.name
    values.setdefault("output", None)
    values["user_name"] = job.user.display_name
    values.update(swarm.request_tags(request))
    values.update(swarm.time_tags(job.created_at))
    if number is not None:
        values.update(output=output, batch_id=number, number=number + 1)
        image = swarm.image_of(output)
        if image:
            values["image"] = image
    return values


def finished_payload(
    job_id: str, name: str, status: str, path: str, *, output=None, error: str = ""
) -> dict:
    """`job.finished`, as Open WebUI's notification: what finished, where to look, and
    its result (the output; a job that did not complete, its error too)."""
    job = {"id": job_id, "name": name, "status": status, "url": settings.SITE_URL + path,
           "output": output}  # fmt: skip
    if error:
        job["error"] = error
    return {"event": "job_finished", "job": job}


def finished_chat(payload: dict) -> tuple[str, str, str]:
    """job.finished as Open WebUI's chat notification: (title, url, content). The title
    is the job's endpoint, the url its page, the content its output as text (a string as
    it is, anything else as JSON) or, for a job that did not complete, its status and
    error."""
    job = payload.get("job") if isinstance(payload.get("job"), dict) else {}
    status, output = str(job.get("status", "")), job.get("output")
    if status != Job.Status.COMPLETED:
        error = job.get("error")
        content = f"{status}: {error}" if error else status
    elif output is None or output == "":
        content = status
    else:
        content = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    return str(job.get("name", "")), str(job.get("url", "")), content

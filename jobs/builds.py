"""A namespace's job as Djinn CI sends a build (andrewpillar/djinn `build/build.go`,
`build/tag.go`): the build payload of the build.* events, in Djinn's field names and
status words. The job's own API and its RunPod callback keep RunPod's words; only these
payloads speak Djinn's.

What maps to what, and why:
- status: IN_QUEUE → queued, IN_PROGRESS → running, COMPLETED → passed, FAILED →
  failed, CANCELLED → killed, TIMED_OUT → timed_out. Djinn's `passed_with_failures`
  (a build whose failed jobs were all in stages allowed to fail) is never sent: a job
  is one handler call, with no stages allowed to fail, so it passes or fails whole.
- manifest: what Djinn runs is its manifest (a YAML text); what a job runs is its
  input, sent as JSON text (which YAML reads too).
- trigger: `manual` for a job submitted through the API (Djinn's word for a build
  submitted by hand, through its API or UI), `schedule` for a cron job's (as Djinn's
  cron builds); `data` names the submitter as Djinn's does. A retried job is the same
  build again (same id and number), not a new trigger.
- urls: `url` is the job's page in its namespace, `tags_url` the API route that tags
  it; Djinn's objects, variables, jobs and artifacts of a build have no counterpart
  here, so their URLs are null.
- output is the job's output (JSON), where Djinn's is the build's log text; `error`
  and `endpoint` are the hub's additions.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote

from django.conf import settings

from jobs.models import Job

Status = Job.Status
DJINN_STATUS = {
    Status.IN_QUEUE: "queued",
    Status.IN_PROGRESS: "running",
    Status.COMPLETED: "passed",
    Status.FAILED: "failed",
    Status.CANCELLED: "killed",
    Status.TIMED_OUT: "timed_out",
}
NO_COUNTERPART = ("objects_url", "variables_url", "jobs_url", "artifacts_url")


# The catalog's examples (jobs.events registers the types).
_NAMESPACE = {"id": 7, "name": "acme", "path": "acme", "description": "",
              "visibility": "private", "owner": {"id": 1, "name": "Ann"},
              "url": "https://hub.example.com/namespaces/acme/"}  # fmt: skip
_BUILD_USER = {"id": 1, "username": "ann", "email": "ann@example.com", "name": "Ann"}
BUILD_EXAMPLE = {
    "id": "5f1c…", "number": 3, "user_id": 1, "namespace_id": 7,
    "manifest": '{"prompt":"hi"}', "status": "passed", "output": {"prompt": "hi"},
    "error": None, "tags": ["nightly"], "pinned": False,
    "created_at": "2026-12-02T10:00:00.120000+00:00",
    "started_at": "2026-12-02T10:00:00.132000+00:00",
    "finished_at": "2026-12-02T10:00:00.472000+00:00",
    "url": "https://hub.example.com/namespaces/acme/jobs/5f1c…/",
    "tags_url": "https://hub.example.com/v2/echo/tag/5f1c…", "objects_url": None,
    "variables_url": None, "jobs_url": None, "artifacts_url": None,
    "trigger": {"type": "manual", "comment": "",
                "data": {"email": "ann@example.com", "username": "ann"}},
    "endpoint": "echo", "user": _BUILD_USER, "namespace": _NAMESPACE,
}  # fmt: skip
QUEUED_EXAMPLE = {**BUILD_EXAMPLE, "status": "queued", "output": None, "started_at": None,
           "finished_at": None}  # fmt: skip
TAGGED_EXAMPLE = {
    "url": BUILD_EXAMPLE["url"], "build": {**BUILD_EXAMPLE, "tags": ["nightly", "urgent"]},
    "user": _BUILD_USER,
    "tags": [{"name": "urgent", "url": "https://hub.example.com/namespaces/acme/jobs/?tag=urgent"}],
}  # fmt: skip


def build_payload(job: Job) -> dict:
    """The build Djinn sends in build.submitted/started/finished/pinned/unpinned."""
    namespace = job.namespace
    return {
        "id": job.id,
        "number": job.number,
        "user_id": job.user_id,
        "namespace_id": namespace.pk,
        "manifest": manifest(job),
        "status": DJINN_STATUS[job.status],
        "output": job.output,
        "error": job.error or None,
        "tags": sorted(job.tags),
        "pinned": job.pinned,
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.completed_at),
        "url": build_url(job),
        "tags_url": settings.SITE_URL + f"/v2/{job.endpoint.name}/tag/{job.id}",
        **dict.fromkeys(NO_COUNTERPART),
        "trigger": trigger(job),
        "endpoint": job.endpoint.name,
        "user": user_payload(job.user),
        "namespace": namespace.as_payload(),
    }


def tagged_payload(job: Job, tags: list[str], user) -> dict:
    """build.tagged, as Djinn's: one event for the tags added together, by `user`."""
    return {
        "url": build_url(job),
        "build": build_payload(job),
        "user": user_payload(user),
        "tags": [{"name": name, "url": tag_url(job, name)} for name in tags],
    }


def manifest(job: Job) -> str:
    return json.dumps(job.input, ensure_ascii=False, separators=(",", ":"))


def trigger(job: Job) -> dict:
    """Djinn's trigger: its type, a comment, and who (`data`: email and username)."""
    return {
        "type": job.trigger,
        "comment": job.trigger_comment,
        "data": {"email": job.user.email, "username": job.user.get_username()},
    }


def build_url(job: Job) -> str:
    return settings.SITE_URL + f"/namespaces/{job.namespace.path}/jobs/{job.id}/"


def tag_url(job: Job, name: str) -> str:
    """The namespace's jobs with that tag (Djinn's tag URL is under the build's)."""
    return settings.SITE_URL + f"/namespaces/{job.namespace.path}/jobs/?tag={quote(name)}"


def user_payload(user) -> dict:
    return {"id": user.pk, "username": user.get_username(), "email": user.email,
            "name": user.display_name}  # fmt: skip


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

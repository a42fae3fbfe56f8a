"""The signed-in user's Jobs pages: their jobs (status, endpoint, times, output or error)
and, per job, its callback deliveries with each attempt and Redeliver. Another user's
job is a 404. Also Pin/Unpin of a namespace's job, for its members."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

import hooks
from hooks.models import Delivery
from jobs import lifecycle
from jobs.events import CALLBACK
from jobs.models import Endpoint, Job
from namespaces import access
from webhookhub import pages

SHOWN = 50


def _own_job(request: HttpRequest, job_id: str) -> Job:
    job = (
        Job.objects.select_related("endpoint", "namespace")
        .filter(pk=job_id, user=request.user)
        .first()
    )
    if job is None:
        raise Http404(
            f"No job {job_id} of yours: it never was, or its result expired and was deleted."
        )
    return job


def callbacks(job: Job):
    """The job's callback deliveries: the events were recorded with the job's owner."""
    return (
        Delivery.objects.filter(
            event__type=CALLBACK, event__user=job.user_id, event__payload__id=job.id
        )
        .select_related("event")
        .order_by("-created_at")
    )


def _own_callbacks(request: HttpRequest):
    """The callback deliveries of every job of the user's (another's never)."""
    return Delivery.objects.filter(event__type=CALLBACK, event__user=request.user)


def _job_of(delivery: Delivery) -> str:
    payload = delivery.event.payload
    return str(payload.get("id", "")) if isinstance(payload, dict) else ""


def _callback_page(delivery: Delivery) -> str:
    return reverse("job_pages:detail", args=[_job_of(delivery)])


def _callback_again(delivery: Delivery) -> str:
    return reverse("job_pages:redeliver", args=[_job_of(delivery), delivery.pk])


@login_required
@never_cache
def callback_search(request: HttpRequest) -> HttpResponse:
    """Every callback of the user's jobs, searched (hooks.search_results), newest first."""
    found = hooks.search_results(request.GET, _own_callbacks(request), _callback_page,
                                 _callback_again)  # fmt: skip
    return render(request, "jobs/callbacks.html", {"found": found},
                  status=200 if found.valid else 400)  # fmt: skip


@login_required
@never_cache
def retry_callbacks(request: HttpRequest) -> HttpResponse:
    """Send every callback a search found again: the count first, then on POST."""
    plan, sent = pages.retry_search(request, _own_callbacks(request))
    if sent:
        return redirect(f"{reverse('job_pages:callbacks')}?{plan.form.query_string()}")
    return render(request, "jobs/retry.html", {"plan": plan},
                  status=400 if plan.error else 200)  # fmt: skip


@login_required
@never_cache
def index(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.filter(user=request.user).select_related("endpoint", "namespace")
    endpoint = Endpoint.objects.filter(active=True).order_by("name").first()
    return render(request, "jobs/index.html", {
        "jobs": jobs.order_by("-created_at")[:SHOWN],
        "kept": _duration(settings.JOB_RESULT_TTL), "kept_sync": _duration(settings.JOB_RESULT_TTL_SYNC),
        # The first job to try, on this hub's own address (an empty list says how).
        "try_url": request.build_absolute_uri(f"/v2/{endpoint.name}/runsync") if endpoint else "",
    })  # fmt: skip


def _duration(seconds: int) -> str:
    return (
        f"{seconds // 60} minute{'s' if seconds // 60 != 1 else ''}"
        if seconds >= 60
        else f"{seconds} s"
    )


@login_required
@never_cache
def detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = _own_job(request, job_id)
    deliveries = [(d, hooks.delivery_attempts(d)) for d in callbacks(job)]
    return render(request, "jobs/detail.html", {"job": job, "deliveries": deliveries})


@login_required
@require_POST
def redeliver(request: HttpRequest, job_id: str, delivery_id) -> HttpResponse:
    job = _own_job(request, job_id)
    pages.redeliver(request, get_object_or_404(callbacks(job), pk=delivery_id), "The callback")
    return redirect("job_pages:detail", job_id=job.id)


@login_required
@require_POST
def stop_retrying(request: HttpRequest, job_id: str, delivery_id) -> HttpResponse:
    """A callback that keeps failing (a URL that will never answer) stops here, at once,
    rather than retrying for days."""
    job = _own_job(request, job_id)
    pages.stop_retrying(request, get_object_or_404(callbacks(job), pk=delivery_id), "The callback")
    return redirect("job_pages:detail", job_id=job.id)


@login_required
@require_POST
def pin(request: HttpRequest, job_id: str, pinned: bool) -> HttpResponse:
    """A member of a job's namespace pins or unpins it (Djinn's pinned builds: the
    namespace's webhooks hear build.pinned or build.unpinned); to anyone else it is a 404."""
    job = Job.objects.select_related("endpoint", "namespace").filter(pk=job_id).first()
    if (
        job is None
        or job.namespace is None
        or (access.role(request.user, job.namespace) < access.Role.COLLABORATOR)
    ):
        raise Http404(f"No job {job_id} in a namespace of yours.")
    lifecycle.pin(job, pinned)
    messages.success(request, f"Job #{job.number} {'pinned' if pinned else 'unpinned'}.")
    return redirect("namespaces:job", path=job.namespace.path, job_id=job.id)

"""Jobs submitted on a schedule: a namespace's cron job, fired by its django-q2 schedule."""

from __future__ import annotations

from jobs import lifecycle
from jobs.models import Job
from namespaces import access
from namespaces.models import Cron


def run_cron(cron_id: int | str) -> str | None:
    """Submit the cron's job into its namespace; the id of the job, or None when the cron
    is gone or its endpoint switched off. It runs as the cron's author while they are
    still a member, else as the namespace's owner."""
    cron = (
        Cron.objects.select_related("namespace", "namespace__root", "endpoint", "author")
        .filter(pk=int(cron_id))
        .first()
    )
    if cron is None or not cron.endpoint.active:
        return None
    namespace = cron.namespace
    user = cron.author
    if user is None or access.role(user, namespace) < access.Role.COLLABORATOR:
        user = namespace.top.owner
    job = Job(endpoint=cron.endpoint, user=user, namespace=namespace, input=cron.input,
              tags=["cron"], trigger=Job.Trigger.SCHEDULE,
              trigger_comment=f"{cron.name}: scheduled by cron {cron.cron}")  # fmt: skip
    return lifecycle.submit(job).id

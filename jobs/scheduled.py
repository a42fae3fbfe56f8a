"""Jobs submitted on a schedule: a namespace's cron job, fired by its django-q2 schedule."""

from __future__ import annotations

import logging

from jobs import lifecycle
from jobs.models import Job
from namespaces import access
from namespaces.models import Cron

log = logging.getLogger(__name__)


def run_cron(cron_id: int | str) -> str | None:
    """Submit the cron's job into its namespace; the id of the job, or None when the cron
    is gone, its endpoint switched off, or whoever last saved it is no longer a member.
    It runs as the member who last saved it (its author): never as another member, the
    owner included, with input they did not write."""
    cron = (
        Cron.objects.select_related("namespace", "namespace__root", "endpoint", "author")
        .filter(pk=int(cron_id))
        .first()
    )
    if cron is None or not cron.endpoint.active:
        return None
    namespace, user = cron.namespace, cron.author
    if user is None or access.role(user, namespace) < access.Role.COLLABORATOR:
        log.warning("Cron %s not run: whoever last saved it is no longer a member of %s.",
                    cron.pk, namespace.path)  # fmt: skip
        return None
    job = Job(endpoint=cron.endpoint, user=user, namespace=namespace, input=cron.input,
              tags=["cron"], trigger=Job.Trigger.SCHEDULE,
              trigger_comment=f"{cron.name}: scheduled by cron {cron.cron}")  # fmt: skip
    return lifecycle.submit(job).id

"""System checks of the job settings: a bad value stops start-up, naming the variable."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def job_settings(app_configs=None, **kwargs) -> list[Error]:
    errors = [
        Error(f"{name} must be a number of seconds, 0 or more.", id="jobs.E002")
        for name in ("JOB_RESULT_TTL", "JOB_RESULT_TTL_SYNC")
        if getattr(settings, name) < 0
    ]
    errors += [
        Error(f"{name} must be at least 1024 bytes.", id="jobs.E003")
        for name in ("JOB_PAYLOAD_LIMIT", "JOB_PAYLOAD_LIMIT_SYNC")
        if getattr(settings, name) < 1024
    ]
    schedule = settings.JOB_CALLBACK_SCHEDULE
    if not schedule or any(s < 0 for s in schedule) or len(schedule) > 100:
        errors.append(
            Error(
                "JOB_CALLBACK_SCHEDULE must list 1 to 100 non-negative delays in seconds.",
                id="jobs.E001",
            )
        )
    return errors

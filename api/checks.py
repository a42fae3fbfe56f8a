"""System checks of the API settings: a bad value stops start-up, naming the variable."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def api_settings(app_configs=None, **kwargs) -> list[Error]:
    if settings.INGEST_RATE_LIMIT < 0:
        return [Error("INGEST_RATE_LIMIT must be 0 (no limit) or more.", id="api.E001")]
    return []

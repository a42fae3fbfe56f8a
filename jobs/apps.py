from django.apps import AppConfig
from django.db.models.signals import post_migrate

import hooks


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: they import models, which exist only once apps are loaded.
        from jobs import checks, events, maintenance, metrics  # noqa: F401 (checks registers)

        events.register()
        hooks.register_metrics(metrics.JobsCollector())
        post_migrate.connect(maintenance.ensure_schedule, sender=self)
        post_migrate.connect(maintenance.ensure_endpoints, sender=self)

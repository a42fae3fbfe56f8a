from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from jobs import events, maintenance

        events.register()
        post_migrate.connect(maintenance.ensure_schedule, sender=self)
        post_migrate.connect(maintenance.ensure_endpoints, sender=self)

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "HTTP API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from api import idempotency  # imports models: only once apps are ready

        post_migrate.connect(idempotency.ensure_schedule, sender=self)

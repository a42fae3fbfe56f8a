from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "HTTP API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from api import checks, idempotency  # noqa: F401 (models: only once apps are ready; checks registers)

        post_migrate.connect(idempotency.ensure_schedule, sender=self)

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class HooksConfig(AppConfig):
    name = "hooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hooks import catalog, checks, schedules  # noqa: F401  (checks register themselves)

        catalog.register_builtin()
        post_migrate.connect(schedules.ensure, sender=self)

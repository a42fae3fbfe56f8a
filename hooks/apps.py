from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class HooksConfig(AppConfig):
    name = "hooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hooks import catalog, checks, fanout, schedules  # noqa: F401  (checks register themselves)

        connection_created.connect(
            fanout.add_sqlite_functions, dispatch_uid="hooks.sqlite_functions"
        )

        catalog.register_builtin()
        post_migrate.connect(schedules.ensure, sender=self)

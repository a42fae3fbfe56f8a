from django.apps import AppConfig
from django.core.signals import request_started
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class HooksConfig(AppConfig):
    name = "hooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these modules import models, which only
        # exist once the app registry is ready. `checks` registers itself.
        from hooks import catalog, checks, slots  # noqa: F401
        from hooks.outbox import fanout
        from hooks.worker import schedules

        connection_created.connect(
            fanout.add_sqlite_functions, dispatch_uid="hooks.sqlite_functions"
        )
        catalog.register_builtin()
        post_migrate.connect(schedules.ensure, sender=self)
        post_migrate.connect(slots.sync_all_env, sender=self, dispatch_uid="hooks.env_slots")
        request_started.connect(slots.sync_env_once, dispatch_uid="hooks.env_slots")

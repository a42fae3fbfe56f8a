from django.apps import AppConfig
from django.core.signals import request_started
from django.db import DatabaseError
from django.db.backends.signals import connection_created
from django.db.models.signals import post_delete, post_migrate, post_save


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
        catalog.set_declared_source(_declared_types)
        for signal in (post_save, post_delete):
            signal.connect(
                _forget_declared, sender="hooks.DeclaredEventType", dispatch_uid="hooks.declared"
            )
        post_save.connect(_sync_pace, sender="hooks.Webhook", dispatch_uid="hooks.pace")
        # A webhook's deliveries go with it: the hub's counted hours are void.
        post_delete.connect(_void_hub_hours, sender="hooks.Webhook", dispatch_uid="hooks.hub_hours")
        post_migrate.connect(schedules.ensure, sender=self)
        post_migrate.connect(slots.sync_all_env, sender=self, dispatch_uid="hooks.env_slots")
        request_started.connect(slots.sync_env_once, dispatch_uid="hooks.env_slots")


def _declared_types():
    from hooks.models import DeclaredEventType  # models exist once apps are ready

    try:
        return [declared.as_event_type() for declared in DeclaredEventType.objects.all()]
    except DatabaseError:  # not migrated yet (e.g. while `migrate` itself runs)
        return []


def _forget_declared(**kwargs) -> None:
    from hooks import catalog  # as ready() does: after the app registry

    catalog.reload_declared()


def _sync_pace(instance, update_fields=None, raw=False, **kwargs) -> None:
    """A saved webhook's limits in force, in its shared bucket (hooks.worker.pacing)."""
    from hooks.worker import pacing  # as ready() does: after the app registry

    if not raw:
        pacing.sync(instance, update_fields)


def _void_hub_hours(**kwargs) -> None:
    from hooks.tools import rollup  # as ready() does: after the app registry

    rollup.invalidate([None])

from django.apps import AppConfig


class RoutesConfig(AppConfig):
    name = "routes"
    verbose_name = "Route webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        # App loading: these modules use the models, which exist only now.
        from routes import audit, events  # noqa: I001
        from routes.matching import matcher
        from routes.models import RouteEvent

        events.register()
        audit.connect()
        post_save.connect(matcher.invalidate, sender=RouteEvent, dispatch_uid="route-reload-save")
        post_delete.connect(matcher.invalidate, sender=RouteEvent, dispatch_uid="route-reload-del")

from django.apps import AppConfig


class NamespacesConfig(AppConfig):
    name = "namespaces"
    verbose_name = "Namespaces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        # App loading: these modules use the models, which exist only now.
        from namespaces import events, signals  # noqa: I001
        from namespaces.models import Namespace

        events.register()
        post_delete.connect(signals.drop_webhooks, sender=Namespace, dispatch_uid="ns-webhooks")

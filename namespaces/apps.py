from django.apps import AppConfig

import hooks


class NamespacesConfig(AppConfig):
    name = "namespaces"
    verbose_name = "Namespaces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        # App loading: these modules use the models, which exist only now.
        from namespaces import access, cron, events, signals  # noqa: I001
        from namespaces.models import Cron, Image, Namespace, Object

        events.register()
        hooks.register_namespaces(access.label, access.find, access.owner_email)
        hooks.register_webhook_page(hooks.NAMESPACE, access.webhook_page)
        post_delete.connect(signals.drop_webhooks, sender=Namespace, dispatch_uid="ns-webhooks")
        post_delete.connect(cron.drop, sender=Cron, dispatch_uid="ns-cron-schedule")
        for model in (Image, Object):
            post_delete.connect(signals.drop_file, sender=model, dispatch_uid=f"ns-file-{model}")

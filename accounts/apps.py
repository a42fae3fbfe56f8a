from django.apps import AppConfig
from django.urls import reverse

import hooks


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import events, signals  # noqa: F401  (signal receivers)

        events.register()
        # A user's notification webhook is on their settings page.
        hooks.register_webhook_page(hooks.USER, lambda webhook: reverse("accounts:settings"))

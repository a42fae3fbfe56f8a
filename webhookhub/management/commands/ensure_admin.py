"""Make sure an administrator account exists, and say how to log in."""

from __future__ import annotations

from django.core.management import BaseCommand

from webhookhub import admin_account


class Command(BaseCommand):
    help = (
        "Create an admin account if none exists (from DJANGO_SUPERUSER_USERNAME/_EMAIL/"
        "_PASSWORD when set, else 'admin' with a generated password) and print the login."
    )

    def handle(self, *args, **options) -> None:
        login = admin_account.ensure()
        if login.created == "from the environment":
            self.stdout.write(f"Created admin account {login.username!r} from the environment.")
        text = "\n".join(login.lines())
        self.stdout.write(self.style.SUCCESS(text) if login.password else text)

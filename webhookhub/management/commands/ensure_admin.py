"""Make sure an administrator account exists, and say how to log in."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, call_command


class Command(BaseCommand):
    help = (
        "Create an admin account if none exists (from DJANGO_SUPERUSER_USERNAME/_EMAIL/"
        "_PASSWORD when set, else 'admin' with a generated password) and print the login."
    )

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        login_url = f"{settings.SITE_URL}/admin/"
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
        if username:
            if not User.objects.filter(username=username).exists():
                call_command("createsuperuser", interactive=False, verbosity=0)
                self.stdout.write(f"Created admin account {username!r} from the environment.")
            self.stdout.write(f"Log in at {login_url} as {username!r}.")
            return
        existing = User.objects.filter(is_superuser=True).order_by("pk").first()
        if existing:
            self.stdout.write(
                f"Log in at {login_url} as {existing.get_username()!r} "
                f"(forgot the password? ./manage.py changepassword {existing.get_username()})."
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created an admin account. Log in at {login_url}\n"
                f"  username: admin\n  password: {password}\n"
                "This password is shown once; change it with: ./manage.py changepassword admin"
            )
        )

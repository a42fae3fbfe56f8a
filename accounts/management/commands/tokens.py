"""`manage.py tokens create <email> --name N` prints a new API token; `tokens revoke`
removes one; `tokens list` shows a user's tokens (never their values)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError

from accounts.models import ApiToken


def find_user(email: str):
    user = get_user_model().objects.filter(email__iexact=email).first()
    if user is None:
        raise CommandError(f"No account with the email {email!r}.")
    return user


class Command(BaseCommand):
    help = "Create, list or revoke API tokens for scripts."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Print a new token (shown once).")
        create.add_argument("email")
        create.add_argument("--name", required=True)
        listing = sub.add_parser("list", help="A user's tokens.")
        listing.add_argument("email")
        revoke = sub.add_parser("revoke", help="Remove a token.")
        revoke.add_argument("email")
        revoke.add_argument("--name", required=True)

    def handle(self, *args, action: str, email: str, **options) -> None:
        user = find_user(email)
        if action == "create":
            name = options["name"].strip()
            if not name:
                raise CommandError("--name may not be blank.")
            if ApiToken.objects.filter(user=user, name=name).exists():
                raise CommandError(f"{email} already has a token named {name!r}.")
            _, raw = ApiToken.issue(user, name)
            self.stdout.write(raw)
        elif action == "list":
            for token in ApiToken.objects.filter(user=user):
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                self.stdout.write(
                    f"{token.name}\t{token.hint}…\tcreated {token.created_at:%Y-%m-%d}\tlast used {used}"
                )
        else:
            deleted, _ = ApiToken.objects.filter(user=user, name=options["name"]).delete()
            if not deleted:
                raise CommandError(f"{email} has no token named {options['name']!r}.")
            self.stdout.write(f"Revoked {options['name']!r}.")

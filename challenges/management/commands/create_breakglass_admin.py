"""`manage.py create_breakglass_admin NAME`: the one local admin SSO-only mode lets in."""

from __future__ import annotations

import secrets
import sys

from django.core.management.base import BaseCommand, CommandError

from challenges.identity.accounts import breakglass_admin_create


class Command(BaseCommand):
    stealth_options = ("stdin",)  # call_command(..., stdin=...) in tests
    help = (
        "Create (or reset the password of) the break-glass admin: a superuser who may "
        "sign in with a local password when SSO_ONLY is on, for when the identity provider "
        "is down. Prints a generated password unless --password-stdin gives one."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )

    def handle(self, *args, username, email, password_stdin, **options):
        if password_stdin:
            password = options.get("stdin", sys.stdin).readline().rstrip("\n")
            if len(password) < 12:
                raise CommandError("The password from stdin is shorter than 12 characters.")
        else:
            password = secrets.token_urlsafe(18)
        try:
            user = breakglass_admin_create(username=username, email=email, password=password)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Break-glass admin {user.username!r} is ready.")
        if not password_stdin:
            self.stdout.write(f"Password (shown once, keep it in the safe): {password}")

"""Prepare the one-machine demo: users with fresh passwords, the starters loaded and approved."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from challenges.models import Challenge, HostTeam
from challenges.services.bundles import challenge_load_bundle
from challenges.services.challenges import challenge_approve
from challenges.services.teams import host_team_add_member, host_team_create

DEMO_USERS = [
    # (username, is_staff/superuser, role)
    ("admin", True, "approves challenges in /admin/"),
    ("host", False, "hosts the starter challenges"),
    ("participant", False, "takes part in challenges"),
]


class Command(BaseCommand):
    help = "Create demo users (printing new passwords), build the starters and load them approved."

    def handle(self, *args, **opts):
        from starters.build import build_starters

        users = {}
        lines = []
        User = get_user_model()
        for username, staff, role in DEMO_USERS:
            password = secrets.token_urlsafe(9)
            user, _ = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            user.is_staff = user.is_superuser = staff
            user.set_password(password)
            user.save()
            users[username] = user
            lines.append(f"  {username:<12} {password:<14} {role}")

        with transaction.atomic():
            team = HostTeam.objects.filter(name="Demo hosts").first() or host_team_create(
                name="Demo hosts", creator=users["host"]
            )
            host_team_add_member(team=team, user=users["host"])

        out_dir = Path(settings.VAR_DIR) / "starters"
        for zip_path in build_starters(out_dir):
            result = challenge_load_bundle(
                source=zip_path,
                user=users["host"],
                host_team=team,
                challenge=_same_title(Challenge.objects.filter(host_team=team), zip_path),
            )
            challenge_approve(challenge=result.challenge, reviewer=users["admin"])
            self.stdout.write(
                f"Loaded and approved {result.challenge.title!r} (id {result.challenge.pk}) from {zip_path}"
            )

        self.stdout.write("\nDemo users (passwords are new on every `make demo`):")
        self.stdout.write("\n".join(lines))
        self.stdout.write(f"Sample submissions are in {out_dir}/<starter>/.")
        # The README's commands read the participant's password from here, so that they
        # run as printed; the file is this checkout's, readable by its owner only.
        passwords = Path(settings.VAR_DIR) / "demo-passwords"
        fd = os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{line.split()[0]} {line.split()[1]}\n" for line in lines))
        self.stdout.write(f"The same passwords are in {passwords} (for this checkout only).")


def _same_title(queryset, zip_path: Path):
    from challenges.bundle import load_bundle

    with load_bundle(zip_path) as bundle:
        title = bundle.spec.title
    return queryset.filter(title=title).first()

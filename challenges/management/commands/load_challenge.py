from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from challenges.access import AccessDenied
from challenges.bundle import BundleError
from challenges.models import Challenge, HostTeam
from challenges.services.bundles import challenge_load_bundle
from challenges.services.teams import host_team_create


class Command(BaseCommand):
    help = "Load a challenge bundle (zip) for a host team; prints the challenge id."

    def add_arguments(self, parser):
        parser.add_argument("zip", help="Path to the challenge zip")
        parser.add_argument(
            "--host-team", required=True, help="Host team name (created if missing)"
        )
        parser.add_argument(
            "--user",
            help="Username recorded as uploader (default: the team's first member, or a superuser for a new team)",
        )
        parser.add_argument(
            "--challenge", type=int, help="Update this existing challenge instead of creating one"
        )
        parser.add_argument("--approve", action="store_true", help="Approve the challenge at once")

    def handle(self, *args, **opts):
        team = HostTeam.objects.filter(name=opts["host_team"]).first()
        if team is None:
            user = self._user(opts["user"])
            team = host_team_create(name=opts["host_team"], creator=user)
            self.stderr.write(f"Created host team {team.name!r} with {user.username} as its admin.")
        elif opts["user"]:
            user = self._user(opts["user"])
        else:
            # "admin" sorts before "member": the team's admins upload first.
            first = team.memberships.select_related("user").order_by("role", "joined_at").first()
            if first is None:
                raise CommandError(f"Host team {team.name!r} has no members: pass --user.")
            user = first.user
        challenge = None
        if opts["challenge"]:
            challenge = Challenge.objects.filter(pk=opts["challenge"]).first()
            if challenge is None:
                raise CommandError(f"No challenge with id {opts['challenge']}.")
        try:
            result = challenge_load_bundle(
                source=opts["zip"],
                user=user,
                host_team=team,
                challenge=challenge,
                approve=opts["approve"],
            )
        except FileNotFoundError as exc:
            raise CommandError(f"{opts['zip']}: {exc.strerror}") from None
        except BundleError as exc:
            for problem in exc.problems:
                self.stderr.write(f"{problem.severity}: {problem}")
            raise CommandError(f"{len(exc.errors)} problem(s); nothing was loaded.") from None
        except AccessDenied as exc:
            raise CommandError(str(exc)) from None
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        verb = "Created" if result.created else "Updated"
        self.stderr.write(
            f"{verb} challenge {result.challenge.title!r} (script v{result.script.version}"
            f"{', approved' if result.challenge.approved_by_admin else ', awaiting approval'})."
        )
        self.stdout.write(str(result.challenge.pk))

    def _user(self, username):
        users = get_user_model().objects
        if username:
            try:
                return users.get(username=username)
            except users.model.DoesNotExist:
                raise CommandError(f"No user {username!r}.") from None
        user = users.filter(is_superuser=True).order_by("pk").first()
        if user is None:
            raise CommandError("No superuser to record as the uploader: create one or pass --user.")
        return user

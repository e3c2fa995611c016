"""Upload a closed tournament round's targets (again): every submission is (re-)scored."""

from django.core.management.base import BaseCommand, CommandError

from challenges.models import Round
from challenges.tournaments import TournamentRefused, round_targets_upload


class Command(BaseCommand):
    help = "Upload the targets CSV (id,era,target) of a closed round; prints how many submissions are scored."

    def add_arguments(self, parser):
        parser.add_argument("challenge", type=int, help="challenge id")
        parser.add_argument("phase", help="phase codename")
        parser.add_argument("round", type=int, help="round number")
        parser.add_argument("targets", help="the round's targets CSV")

    def handle(self, *args, **opts):
        opened = (
            Round.objects.select_related("phase__challenge")
            .filter(
                phase__challenge_id=opts["challenge"],
                phase__codename=opts["phase"],
                number=opts["round"],
            )
            .first()
        )
        if opened is None:
            raise CommandError(
                f"Challenge {opts['challenge']}, phase {opts['phase']!r} has no round {opts['round']}."
            )
        try:
            with open(opts["targets"], "rb") as stream:
                count = round_targets_upload(user=None, round=opened, targets=stream)
        except FileNotFoundError as exc:
            raise CommandError(f"{opts['targets']}: {exc.strerror}") from None
        except TournamentRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(count))

from django.core.management.base import BaseCommand

from challenges.models import ChallengePhase
from challenges.services.leaderboard_refresh import leaderboard_refresh


class Command(BaseCommand):
    help = (
        "Derive every leaderboard entry again from the results (after upgrading a database "
        "that has results from before leaderboard entries existed, or to repair one)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--challenge", type=int, help="Only this challenge's phases")

    def handle(self, *args, **opts):
        phases = ChallengePhase.objects.select_related("challenge").order_by("pk")
        if opts["challenge"]:
            phases = phases.filter(challenge_id=opts["challenge"])
        total = 0
        for phase in phases:
            written = leaderboard_refresh(phase=phase)
            total += written
            self.stdout.write(f"{phase}: {written} entries")
        self.stdout.write(f"{total} entries in {phases.count()} phase(s)")

"""Operators' and hosts' scripts: open a tournament round from a live features file."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from challenges.models import ChallengePhase
from challenges.tournaments import TournamentRefused, round_open


class Command(BaseCommand):
    help = (
        "Open the next round of a tournament phase on a live features CSV: every team's "
        "model runs on it and every team's webhooks are told. Prints the round number."
    )

    def add_arguments(self, parser):
        parser.add_argument("challenge", type=int, help="challenge id")
        parser.add_argument("phase", help="phase codename")
        parser.add_argument("live_features", help="CSV with an id column")
        parser.add_argument("--data-version", default="", help="default: the round number")
        parser.add_argument(
            "--closes-at", help="ISO 8601 close time (default: the phase's round_hours)"
        )

    def handle(self, *args, **opts):
        phase = ChallengePhase.objects.filter(
            challenge_id=opts["challenge"], codename=opts["phase"]
        ).first()
        if phase is None:
            raise CommandError(f"Challenge {opts['challenge']} has no phase {opts['phase']!r}.")
        closes_at = None
        if opts["closes_at"]:
            closes_at = parse_datetime(opts["closes_at"])
            if closes_at is None or closes_at.tzinfo is None:
                raise CommandError("--closes-at must be an ISO 8601 time with a time zone.")
        try:
            with open(opts["live_features"], "rb") as stream:
                opened = round_open(
                    user=None,
                    phase=phase,
                    live_features=stream,
                    data_version=opts["data_version"],
                    closes_at=closes_at,
                )
        except FileNotFoundError as exc:
            raise CommandError(f"{opts['live_features']}: {exc.strerror}") from None
        except TournamentRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(opened.number))

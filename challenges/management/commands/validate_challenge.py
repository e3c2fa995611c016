from django.core.management.base import BaseCommand

from challenges.services.bundles import bundle_validate


class Command(BaseCommand):
    help = "Check a challenge bundle without loading it: prints every problem; exit 1 on any error."

    def add_arguments(self, parser):
        parser.add_argument("zip")

    def handle(self, *args, **opts):
        try:
            problems = bundle_validate(source=opts["zip"])
        except FileNotFoundError as exc:
            self.stderr.write(f"{opts['zip']}: {exc.strerror}")
            raise SystemExit(1) from None
        errors = [p for p in problems if p.severity == "error"]
        for problem in problems:
            self.stdout.write(f"{problem.severity}: {problem}")
        if errors:
            self.stdout.write(
                f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s): the bundle would be refused."
            )
            raise SystemExit(1)
        self.stdout.write(f"OK: the bundle is valid ({len(problems)} warning(s)).")

"""Prove that a sandboxed evaluation can import what scripts import lazily, before serving."""

from django.core.management.base import BaseCommand, CommandError

from workers.sandbox.check import sandbox_check


class Command(BaseCommand):
    help = (
        "Run the evaluation sandbox's self-check (what every worker runs at start): a "
        "sandboxed child imports pandas, pyarrow and scikit-learn lazily and writes in its "
        "work folder. Exits non-zero with the folder it cannot reach and what to do."
    )

    def handle(self, *args, **opts):
        result = sandbox_check()
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        if not result.ok:
            raise CommandError(result.message)
        covered = ", ".join(result.filesystem.get("covered", [])) or "nothing"
        self.stdout.write(f"sandbox: self-check passed (each child covers {covered}).")

"""Rebuild the catalogues: extract the marked strings of the translated folders
(evalserver.translations.TRANSLATED) into locale/<lang>/LC_MESSAGES/django.po, keeping
existing translations, then compile each .po into the .mo the server reads (both are
committed: the server and CI need no gettext tools; tests/test_i18n.py checks they agree).
"""

from __future__ import annotations

import os
import subprocess

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from evalserver.translations import ROOT, catalogues, makemessages_arguments


class Command(BaseCommand):
    help = "Extract the pages' strings into locale/*/django.po and compile the .mo files."

    def add_arguments(self, parser):
        parser.add_argument(
            "--compile-only", action="store_true", help="Only compile the .po files into .mo."
        )

    def handle(self, *args, compile_only: bool = False, **options):
        if not compile_only:
            # makemessages reads the current directory: the repository, whatever the caller's.
            cwd = os.getcwd()
            os.chdir(ROOT)
            try:
                call_command("makemessages", *makemessages_arguments(), verbosity=0)
            finally:
                os.chdir(cwd)
        for po in catalogues():
            answer = subprocess.run(
                ["msgfmt", "--check", "--statistics", "-o", str(po.with_suffix(".mo")), str(po)],
                capture_output=True,
                text=True,
                check=False,
            )
            if answer.returncode != 0:
                raise CommandError(f"{po}: {answer.stderr.strip()}")
            # msgfmt reports on stderr: "N translated messages, M untranslated messages."
            self.stdout.write(f"{po.relative_to(ROOT)}: {answer.stderr.strip()}")

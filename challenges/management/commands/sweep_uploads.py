"""Remove resumable uploads nobody touched for RESUMABLE_UPLOAD_TTL_S, with their parts
(the beat task does it hourly; this is for installs without beat, or to do it now)."""

from django.core.management.base import BaseCommand

from challenges.services.resumable import resumable_uploads_sweep


class Command(BaseCommand):
    help = "Remove abandoned resumable uploads (older than RESUMABLE_UPLOAD_TTL_S)."

    def handle(self, *args, **options):
        report = resumable_uploads_sweep()
        self.stdout.write(f"removed {report.uploads} upload(s), {report.parts} part(s)")

"""Remove failed submissions' files past FAILED_SUBMISSION_RETENTION_DAYS (the beat task
does it hourly; this is for installs without beat, or to do it now)."""

from django.core.management.base import BaseCommand

from challenges.services.submission_storage import submissions_purge_failed_inputs


class Command(BaseCommand):
    help = "Remove the files of submissions that failed longer ago than the retention."

    def handle(self, *args, **options):
        report = submissions_purge_failed_inputs()
        self.stdout.write(f"removed {report.files} file(s), {report.bytes} bytes")

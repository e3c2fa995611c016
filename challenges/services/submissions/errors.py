"""Why a submission is refused: the exceptions the API and the pages turn into 4xx answers."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def reader_time(moment: dt.datetime) -> str:
    """A time in a refusal: in the reader's zone, named (the API's fields stay UTC ISO)."""
    return date_format(timezone.localtime(moment), "Y-m-d H:i T")


class SubmissionRefused(Exception):
    """The submission is not accepted. The message says why and what to do."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class StorageExceeded(SubmissionRefused):
    """The team's stored submission files in the challenge would pass the operator's cap."""

    status_code = 413

    def __init__(self, *, limit: int, used: int, incoming: int):
        super().__init__(
            ngettext(
                "Your team already stores %(used)s bytes of submission files in this challenge; "
                "this upload of %(incoming)s bytes would pass the cap of %(limit)s bytes per "
                "team (SUBMISSION_TEAM_STORAGE_BYTES). Failed submissions' files are removed "
                "after %(days)s day; ask the hosts or the operator if you need more.",
                "Your team already stores %(used)s bytes of submission files in this challenge; "
                "this upload of %(incoming)s bytes would pass the cap of %(limit)s bytes per "
                "team (SUBMISSION_TEAM_STORAGE_BYTES). Failed submissions' files are removed "
                "after %(days)s days; ask the hosts or the operator if you need more.",
                settings.FAILED_SUBMISSION_RETENTION_DAYS,
            )
            % {
                "used": used,
                "incoming": incoming,
                "limit": limit,
                "days": settings.FAILED_SUBMISSION_RETENTION_DAYS,
            },
            field="file",
        )
        self.limit, self.used, self.incoming = limit, used, incoming


class FileTooLarge(SubmissionRefused):
    """The declared or received size passes a limit; the message names it."""

    status_code = 413


class QuotaExceeded(SubmissionRefused):
    status_code = 429

    def __init__(self, quota: str, message: str, resets_at: dt.datetime | None):
        super().__init__(message, field="quota")
        self.quota = quota
        self.resets_at = resets_at


def check_approved(
    challenge, *, opens: str = "", refusal: type[SubmissionRefused] = SubmissionRefused
) -> None:
    """Nothing a challenge runs (participants' code, later the host's unreviewed script)
    starts before an admin approves it. `opens` names what approval opens ("submissions",
    "rounds"), for the message; `refusal` is the caller's kind of refusal."""
    if not challenge.approved_by_admin:
        if opens == "submissions":
            raise refusal(
                _("This challenge is not approved yet; submissions open once an admin approves it.")
            )
        if opens == "rounds":
            raise refusal(
                _("This challenge is not approved yet; rounds open once an admin approves it.")
            )
        raise refusal(_("This challenge is not approved yet."))

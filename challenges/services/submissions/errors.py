"""Why a submission is refused: the exceptions the API and the pages turn into 4xx answers."""

from __future__ import annotations

import datetime as dt

from django.conf import settings


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
            f"Your team already stores {used} bytes of submission files in this challenge; "
            f"this upload of {incoming} bytes would pass the cap of {limit} bytes per team "
            "(SUBMISSION_TEAM_STORAGE_BYTES). Failed submissions' files are removed after "
            f"{settings.FAILED_SUBMISSION_RETENTION_DAYS} day(s); ask the hosts or the "
            "operator if you need more.",
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
        tail = f"; {opens} open once an admin approves it." if opens else "."
        raise refusal("This challenge is not approved yet" + tail)

"""Words the pages show for stored values (statuses, visibilities) and the messages the
page scripts show, translated here.

The models' own choice labels are English and belong to the challenges app; the pages
read these instead, so a Japanese page never shows an English status.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

SUBMISSION_STATUS = {
    "submitted": _("Submitted"),
    "queued": _("Queued"),
    "predicting": _("Predicting"),
    "validating": _("Validating"),
    "running": _("Running"),
    "finished": _("Finished"),
    "partially_evaluated": _("Partially evaluated"),
    "failed": _("Failed"),
    "cancelled": _("Cancelled"),
}
REVIEW = {
    "pending": _("Pending review"),
    "approved": _("Approved"),
    "rejected": _("Rejected"),
}
SCRIPT_STATUS = {
    "not_needed": _("no requirements"),
    "pending": _("waiting for approval"),
    "building": _("installing requirements"),
    "ready": _("ready"),
    "failed": _("installing requirements failed"),
}
VISIBILITY = {
    1: _("Host only"),
    2: _("Host and the submitting team"),
    3: _("Public"),
}
SCOPE = {
    "public": _("Public submissions"),
    "all": _("All submissions"),
    "final": _("Final picks"),
}
ROUND_SOURCE = {
    "model": _("Model run"),
    "file": _("Uploaded file"),
}
ROUND_STATUS = {
    "queued": _("Queued"),
    "predicting": _("Predicting"),
    "pending": _("Pending (waiting for targets)"),
    "scoring": _("Scoring"),
    "scored": _("Scored"),
    "failed": _("Failed"),
}
MERGE_STATUS = {
    "pending": _("Waiting for the other team"),
    "accepted": _("Merged"),
    "declined": _("Declined"),
    "withdrawn": _("Withdrawn"),
}
PROBLEM_SEVERITY = {
    "error": pgettext_lazy("bundle problem", "error"),
    "warning": pgettext_lazy("bundle problem", "warning"),
}

KINDS = {
    "submission_status": SUBMISSION_STATUS,
    "review": REVIEW,
    "script_status": SCRIPT_STATUS,
    "visibility": VISIBILITY,
    "scope": SCOPE,
    "round_source": ROUND_SOURCE,
    "round_status": ROUND_STATUS,
    "severity": PROBLEM_SEVERITY,
    "merge_status": MERGE_STATUS,
}


def label(kind: str, value) -> str:
    """The translated word for a stored `value`; the value itself if it has none (a
    status added later still shows, in English, rather than nothing)."""
    return str(KINDS[kind].get(value, value))


# For frontend/static/frontend/*.js, rendered into every page by base.html as JSON
# (no second catalogue for scripts). %(name)s placeholders are filled by the script.
SCRIPT_TEXTS = {
    "uploading": _("Uploading…"),
    "uploading_percent": _("Uploading… %(percent)s%%"),
    "uploaded_checking": _("Uploaded; checking…"),
    "uploaded": _("Uploaded."),
    "not_accepted_below": _("Not accepted: see below."),
    "network_error": _("The upload failed (network error). Try again."),
    "server_answered": _(
        "The server answered %(status)s. Try again; if it keeps failing, send the form "
        "without JavaScript."
    ),
    "connection_dropped": _("the connection dropped"),
    "resume_note": _(
        "An upload of %(name)s stopped before the end. Choose the same file and submit: it "
        "goes on where it stopped."
    ),
    "a_file": _("a file"),
    "resuming_at": _("Resuming at %(percent)s%%…"),
    "checking_file": _("Checking the file… %(percent)s%%"),
    "uploading_progress": _("Uploading… %(percent)s%%"),
    "checking_upload": _("Uploaded; checking… %(percent)s%%"),
    "not_accepted": _("Not accepted: %(detail)s"),
    "refused": _("The upload was refused: %(detail)s"),
    "paused": _(
        "The upload paused at %(percent)s%% (%(detail)s). Submit again, or reload the page "
        "and choose the same file: it goes on from there."
    ),
    "retrying": _("Connection lost; retrying…"),
    "stopped": _("The upload stopped: %(error)s. Submit again to go on."),
    "server_answered_kept": _("The server answered %(status)s; submit again (the file is kept)."),
    "nothing": _("nothing"),
    "statuses": SUBMISSION_STATUS,
}


def script_texts() -> dict:
    """SCRIPT_TEXTS in the active language, ready for json_script."""
    return {
        key: {k: str(v) for k, v in value.items()} if isinstance(value, dict) else str(value)
        for key, value in SCRIPT_TEXTS.items()
    }

"""What teams and hosts choose about a submission: show it on the leaderboard, pick it
as final (the team), mark it as a baseline (the hosts)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from challenges.services.submission_choices import (
    submission_set_baseline,
    submission_set_final,
    submission_set_public,
)
from challenges.services.submissions import SubmissionRefused
from challenges.submission_access import access_submission
from frontend.views.common import page, safe_next

CHOICES = {
    "public": (
        submission_set_public,
        "is_public",
        (
            gettext_lazy("Submission %(id)s shows on the leaderboard."),
            gettext_lazy("Submission %(id)s is hidden."),
        ),
    ),
    "final": (
        submission_set_final,
        "is_final",
        (
            gettext_lazy("Submission %(id)s is a final pick."),
            gettext_lazy("Submission %(id)s is no longer a final pick."),
        ),
    ),
    "baseline": (
        submission_set_baseline,
        "is_baseline",
        (
            gettext_lazy("Submission %(id)s is a baseline."),
            gettext_lazy("Submission %(id)s is not a baseline."),
        ),
    ),
}


@login_required
@require_POST
@page
def choose(request, submission_id: int, what: str):
    service, argument, (yes, no) = CHOICES[what]
    view = access_submission(request.user, submission_id)
    value = request.POST.get("value") == "on"
    try:
        service(submission=view.submission, user=request.user, **{argument: value})
    except SubmissionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, (yes if value else no) % {"id": submission_id})
    return redirect(safe_next(request, reverse("submission", args=[submission_id])))

"""The host's analytics page of a phase (the numbers of challenges.analytics)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.translation import gettext as _

from challenges.access import access_phase, require_challenge_host
from challenges.analytics.phase import phase_analytics
from frontend.views.common import page


@login_required
@page
def analytics(request, challenge_id: int, codename: str):
    phase = access_phase(request.user, challenge_id, codename=codename)
    require_challenge_host(request.user, phase.challenge, _("see analytics"))
    numbers = phase_analytics(phase)
    statuses = sorted({s for row in numbers["submissions_per_day"] for s in row["by_status"]})
    for row in numbers["submissions_per_day"]:
        row["cells"] = [row["by_status"].get(s, 0) for s in statuses]
    return render(
        request,
        "frontend/host/analytics.html",
        {
            "challenge": phase.challenge,
            "phase": phase,
            "phases": phase.challenge.phases.order_by("bundle_id"),
            "numbers": numbers,
            "statuses": statuses,
        },
    )

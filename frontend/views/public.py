"""Pages for everyone: the challenge list, a challenge's page, sign-up."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import (
    access_challenge,
    challenges_visible_to,
    phases_listed_to,
    user_is_challenge_host,
)
from challenges.deadlines import entry_closed, merger_deadline
from challenges.discussion.selectors import announcements_of
from challenges.leaderboard_access import is_revealed, splits_listed_to
from challenges.runtime import code_runtime
from challenges.selectors import participation_for_user, teams_of_user
from challenges.services.submissions.intake import submission_is_late
from frontend.views.common import page


def home(request):
    now = timezone.now()
    challenges = list(challenges_visible_to(request.user).order_by("end_date"))
    groups = [
        (
            "active",
            _("Active"),
            [
                c
                for c in challenges
                if (c.start_date is None or c.start_date <= now) and now < c.end_date
            ],
        ),
        ("upcoming", _("Upcoming"), [c for c in challenges if c.start_date and c.start_date > now]),
        ("past", _("Past"), [c for c in challenges if c.end_date <= now]),
    ]
    return render(
        request, "frontend/home.html", {"groups": groups, "any_challenge": bool(challenges)}
    )


@page
def challenge_detail(request, challenge_id: int):
    challenge = access_challenge(request.user, challenge_id)
    is_host = user_is_challenge_host(request.user, challenge)
    phases = phases_listed_to(
        is_host,
        challenge.phases.select_related("tournament").prefetch_related(
            "phase_splits__dataset_split"
        ),
    )
    now = timezone.now()
    for phase in phases:
        phase.state = (
            "open"
            if phase.is_open
            else ("upcoming" if phase.start_date and phase.start_date > now else "closed")
        )
        phase.shown_splits = splits_listed_to(is_host, phase.phase_splits.all())
        phase.late = submission_is_late(phase, now)
        for ps in phase.shown_splits:
            ps.phase = phase
            ps.revealed = is_revealed(ps, now)
    participation = participation_for_user(request.user, challenge)
    teams = list(teams_of_user(request.user)) if participation is None else []
    return render(
        request,
        "frontend/challenge.html",
        {
            "challenge": challenge,
            "phases": phases,
            "is_host": is_host,
            "participation": participation,
            "teams": teams,
            # Kaggle's deadlines (challenges.deadlines), shown in the reader's time zone.
            "entry_closed": entry_closed(challenge, now),
            "merger_deadline": merger_deadline(challenge),
            "final_deadline": challenge.final_submission_deadline,
            "prizes": [p for p in challenge.prizes or [] if isinstance(p, dict)],
            "runtime": code_runtime() if any(p.submission_type == "code" for p in phases) else None,
            "announcements": announcements_of(challenge),
        },
    )

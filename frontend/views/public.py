"""Pages for everyone: the challenge list, a challenge's page, sign-up."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone

from challenges.access import access_challenge, challenges_visible_to, user_is_challenge_host
from challenges.discussion.selectors import announcements_of
from challenges.leaderboard_access import effective_visibility
from challenges.models import ChallengePhaseSplit
from challenges.runtime import code_runtime
from challenges.selectors import participation_for_user, teams_of_user
from frontend.views.common import page


def home(request):
    now = timezone.now()
    challenges = list(challenges_visible_to(request.user).order_by("end_date"))
    groups = {
        "Active": [
            c
            for c in challenges
            if (c.start_date is None or c.start_date <= now) and now < c.end_date
        ],
        "Upcoming": [c for c in challenges if c.start_date and c.start_date > now],
        "Past": [c for c in challenges if c.end_date <= now],
    }
    return render(request, "frontend/home.html", {"groups": groups})


@page
def challenge_detail(request, challenge_id: int):
    challenge = access_challenge(request.user, challenge_id)
    is_host = user_is_challenge_host(request.user, challenge)
    phases = [
        p
        for p in challenge.phases.select_related("tournament").prefetch_related(
            "phase_splits__dataset_split"
        )
        if p.is_public or is_host
    ]
    now = timezone.now()
    for phase in phases:
        phase.state = (
            "open"
            if phase.is_open
            else ("upcoming" if phase.start_date and phase.start_date > now else "closed")
        )
        phase.shown_splits = [
            ps
            for ps in phase.phase_splits.all()
            if is_host or effective_visibility(ps) != ChallengePhaseSplit.Visibility.HOST
        ]
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
            "prizes": [p for p in challenge.prizes or [] if isinstance(p, dict)],
            "runtime": code_runtime() if any(p.submission_type == "code" for p in phases) else None,
            "announcements": announcements_of(challenge),
        },
    )

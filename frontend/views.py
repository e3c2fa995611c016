from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from challenges.access import challenges_visible_to, user_is_challenge_host
from challenges.models import Challenge
from challenges.runtime import code_runtime


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


def challenge_detail(request, challenge_id: int):
    try:
        challenge = challenges_visible_to(request.user).get(pk=challenge_id)
    except Challenge.DoesNotExist:
        raise Http404("No such challenge, or it is not public yet.") from None
    is_host = user_is_challenge_host(request.user, challenge)
    phases = [
        p
        for p in challenge.phases.prefetch_related("phase_splits__dataset_split")
        if p.is_public or is_host
    ]
    return render(
        request,
        "frontend/challenge.html",
        {
            "challenge": challenge,
            "phases": phases,
            "is_host": is_host,
            "runtime": code_runtime() if any(p.submission_type == "code" for p in phases) else None,
        },
    )

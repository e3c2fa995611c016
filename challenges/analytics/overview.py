"""The same numbers across challenges, for admins (ops status): per challenge, teams,
participants, submissions by status and evaluation time percentiles."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count

from challenges.analytics.phase import percentile
from challenges.models import Challenge, ChallengeParticipation, ParticipantTeamMember, Submission


def challenges_overview() -> list[dict[str, Any]]:
    by_status: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        Submission.objects.values("phase__challenge_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        by_status[row["phase__challenge_id"]][row["status"]] = row["n"]
    teams = dict(
        ChallengeParticipation.objects.filter(is_host_team=False)
        .values("challenge_id")
        .annotate(n=Count("pk"))
        .values_list("challenge_id", "n")
    )
    people = dict(
        ParticipantTeamMember.objects.filter(team__participations__is_host_team=False)
        .values("team__participations__challenge_id")
        .annotate(n=Count("user_id", distinct=True))
        .values_list("team__participations__challenge_id", "n")
    )
    times: dict[int, list[float]] = defaultdict(list)
    for challenge_id, seconds in Submission.objects.filter(
        status__in=Submission.RANKED, wall_time_s__isnull=False
    ).values_list("phase__challenge_id", "wall_time_s"):
        times[challenge_id].append(seconds)
    out = []
    for challenge in Challenge.objects.order_by("pk").only("pk", "title"):
        seconds = sorted(times.get(challenge.pk, []))
        out.append(
            {
                "challenge": challenge.pk,
                "title": challenge.title,
                "teams": teams.get(challenge.pk, 0),
                "participants": people.get(challenge.pk, 0),
                "submissions": by_status.get(challenge.pk, {}),
                "evaluation_time_s": {
                    "p50": percentile(seconds, 50),
                    "p90": percentile(seconds, 90),
                    "p99": percentile(seconds, 99),
                },
            }
        )
    return out

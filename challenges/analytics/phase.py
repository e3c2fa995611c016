"""A phase's numbers for its hosts: teams and participants over time, submissions per day
by status, failure classes, evaluation time percentiles, per split the score distribution
and the best score over time, and each team's last submission. A fixed number of queries
whatever the size of the phase (the per-split reads are one or two per split)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from django.db.models import Count, Max
from django.db.models.functions import TruncDate

from challenges import leaderboard_rules as rules
from challenges.models import (
    ChallengeParticipation,
    ChallengePhase,
    ChallengePhaseSplit,
    LeaderboardEntry,
    ParticipantTeamMember,
    Submission,
    SubmissionResult,
)

BINS = 10


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted `values` (None for none)."""
    if not values:
        return None
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def _cumulative(dates: list) -> list[dict[str, Any]]:
    counts = Counter(dates)
    total, out = 0, []
    for day in sorted(counts):
        total += counts[day]
        out.append({"date": day.isoformat(), "count": total})
    return out


def _people_over_time(challenge_id: int) -> tuple[list, list]:
    participations = list(
        ChallengeParticipation.objects.filter(
            challenge_id=challenge_id, is_host_team=False
        ).values_list("team_id", "accepted_terms_at")
    )
    teams = _cumulative([at.date() for _, at in participations])
    accepted = dict(participations)
    first_seen: dict[int, Any] = {}
    for team_id, user_id, joined in ParticipantTeamMember.objects.filter(
        team_id__in=list(accepted)
    ).values_list("team_id", "user_id", "joined_at"):
        day = max(joined, accepted[team_id]).date()
        if user_id not in first_seen or day < first_seen[user_id]:
            first_seen[user_id] = day
    return teams, _cumulative(list(first_seen.values()))


def _histogram(values: list[float]) -> list[dict[str, Any]]:
    if not values:
        return []
    low, high = min(values), max(values)
    if low == high:
        return [{"from": low, "to": high, "count": len(values)}]
    width = (high - low) / BINS
    counts = [0] * BINS
    for value in values:
        counts[min(int((value - low) / width), BINS - 1)] += 1
    return [
        {"from": low + i * width, "to": low + (i + 1) * width, "count": counts[i]}
        for i in range(BINS)
    ]


def _split_numbers(split: ChallengePhaseSplit) -> dict[str, Any]:
    schema = split.leaderboard.schema
    label = rules.resolve_label(schema, None)
    descending = rules.is_descending(schema, label, split.is_leaderboard_order_descending)
    team_best = list(
        LeaderboardEntry.objects.filter(
            phase_split=split,
            scope=LeaderboardEntry.Scope.ALL,
            label=label,
            is_baseline=False,
            value__isnull=False,
        ).values_list("value", flat=True)
    )
    results = SubmissionResult.objects.filter(
        phase_split=split, is_active=True, submission__is_baseline=False
    ).values_list("submission__submitted_at", "scores")
    best_by_day: dict[Any, float] = {}
    for submitted_at, scores in results.order_by("submission__submitted_at"):
        value = scores.get(label) if isinstance(scores, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        day = submitted_at.date()
        old = best_by_day.get(day)
        if old is None or (value > old if descending else value < old):
            best_by_day[day] = value
    best, over_time = None, []
    for day in sorted(best_by_day):
        value = best_by_day[day]
        if best is None or (value > best if descending else value < best):
            best = value
        over_time.append({"date": day.isoformat(), "best": best})
    return {
        "split": split.dataset_split.codename,
        "label": label,
        "descending": descending,
        "teams_scored": len(team_best),
        "distribution": _histogram(team_best),
        "best_over_time": over_time,
    }


def phase_analytics(phase: ChallengePhase) -> dict[str, Any]:
    """Every number of the host's analytics page for `phase` (the API answers the same)."""
    submissions = Submission.objects.filter(phase=phase)
    teams, participants = _people_over_time(phase.challenge_id)
    per_day: dict[str, dict[str, int]] = defaultdict(dict)
    for row in (
        submissions.annotate(day=TruncDate("submitted_at"))
        .values("day", "status")
        .annotate(n=Count("pk"))
        .order_by("day", "status")
    ):
        per_day[row["day"].isoformat()][row["status"]] = row["n"]
    failures = (
        submissions.filter(status=Submission.Status.FAILED)
        .values("failure_kind")
        .annotate(n=Count("pk"))
        .order_by("-n", "failure_kind")
    )
    times = sorted(
        submissions.filter(status__in=Submission.RANKED, wall_time_s__isnull=False).values_list(
            "wall_time_s", flat=True
        )
    )
    last = (
        submissions.values("team_id", "team__name")
        .annotate(last=Max("submitted_at"), submissions=Count("pk"))
        .order_by("-last")
    )
    last_status = dict(
        submissions.filter(submitted_at__in=[r["last"] for r in last]).values_list(
            "team_id", "status"
        )
    )
    splits = ChallengePhaseSplit.objects.filter(phase=phase).select_related(
        "dataset_split", "leaderboard"
    )
    return {
        "challenge": phase.challenge_id,
        "phase": phase.codename,
        "teams_over_time": teams,
        "participants_over_time": participants,
        "submissions_per_day": [
            {"date": day, "by_status": statuses} for day, statuses in sorted(per_day.items())
        ],
        "failure_classes": [
            {"failure_kind": r["failure_kind"] or "unknown", "count": r["n"]} for r in failures
        ],
        "evaluation_time_s": {
            "count": len(times),
            "p50": percentile(times, 50),
            "p90": percentile(times, 90),
            "p99": percentile(times, 99),
            "max": times[-1] if times else None,
        },
        "splits": [_split_numbers(split) for split in splits.order_by("pk")],
        "last_submission_per_team": [
            {
                "team": r["team__name"],
                "last_submitted_at": r["last"].isoformat(),
                "status": last_status.get(r["team_id"], ""),
                "submissions": r["submissions"],
            }
            for r in last
        ],
    }

"""Leaderboard reads (selectors): ranked rows, one team's standing, the best score over
time. Each costs one query on top of `access_leaderboard`, whatever the number of teams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F, Subquery

from challenges import leaderboard_rules as rules
from challenges.leaderboard_access import LeaderboardView, Scope
from challenges.models import ChallengeParticipation, LeaderboardEntry
from challenges.services.leaderboards import ranked_results

_ROW_FIELDS = (
    "team_id",
    "team__name",
    "submission_id",
    "scores",
    "submitted_at",
    "is_baseline",
    "is_host_team",
    "wall_time_s",
    "method_name",
)


@dataclass(frozen=True)
class Ordering:
    label: str
    descending: bool


def ordering_for(view: LeaderboardView, requested: str | None) -> Ordering:
    """The label and direction to rank by; UnknownLabel names the valid ones."""
    schema = view.split.leaderboard.schema
    label = rules.resolve_label(schema, requested)
    return Ordering(
        label, rules.is_descending(schema, label, view.split.is_leaderboard_order_descending)
    )


def _entries(view: LeaderboardView, ordering: Ordering):
    qs = LeaderboardEntry.objects.filter(
        phase_split=view.split, scope=view.scope, label=ordering.label
    )
    if view.only_team_id is not None:
        qs = qs.filter(team_id=view.only_team_id)
    value = (
        F("value").desc(nulls_last=True) if ordering.descending else F("value").asc(nulls_last=True)
    )
    return qs.order_by(value, "submitted_at", "submission_id")


def leaderboard_rows(view: LeaderboardView, ordering: Ordering) -> list[dict[str, Any]]:
    """Every row the reader may see, best first, with ranks. Baselines and the hosts'
    own entries show without a rank and take none."""
    split = view.split
    labels = rules.labels_of(split.leaderboard.schema)
    precision = split.leaderboard_decimal_precision
    rows = []
    rank = 0
    for (
        team_id,
        team_name,
        submission_id,
        scores,
        submitted_at,
        is_baseline,
        is_host_team,
        wall_time_s,
        method_name,
    ) in _entries(view, ordering).values_list(*_ROW_FIELDS):
        ranked = not (is_baseline or is_host_team)
        if ranked:
            rank += 1
        values = rules.ordered_scores(scores, labels)
        named = view.shows_name(team_id, is_baseline)
        row = {
            "rank": rank if ranked else None,
            "team": team_name if named else None,
            "is_own_team": team_id == view.team_id,
            "is_baseline": is_baseline,
            "is_host_team": is_host_team,
            "method_name": method_name if named else "",
            "scores": values,
            "display": [rules.display(v, precision) for v in values],
            "submitted_at": submitted_at.isoformat(),
        }
        if view.is_host:
            row["team_id"] = team_id
        if view.shows_submission(team_id):
            row["submission_id"] = submission_id
        if split.show_execution_time:
            row["execution_time_s"] = wall_time_s
        rows.append(row)
    return rows


def leaderboard_history(view: LeaderboardView, ordering: Ordering) -> list[dict[str, Any]]:
    """The best score over time: one point per submission that beat every earlier one
    the reader may see. Baselines are references, not progress: they are left out."""
    split = view.split
    results = ranked_results(view.phase).filter(phase_split=split, submission__is_baseline=False)
    banned = ChallengeParticipation.objects.filter(challenge=view.challenge, is_banned=True).values(
        "team_id"
    )
    hosts = ChallengeParticipation.objects.filter(
        challenge=view.challenge, is_host_team=True
    ).values("team_id")
    results = results.exclude(submission__team_id__in=Subquery(banned))
    if view.scope != Scope.ALL:
        results = results.exclude(submission__team_id__in=Subquery(hosts))
    if view.scope == Scope.PUBLIC:
        results = results.filter(submission__is_public=True)
    if view.only_team_id is not None:
        results = results.filter(submission__team_id=view.only_team_id)
    points = []
    best = None
    rows = results.order_by("submission__submitted_at", "submission_id").values_list(
        "submission__submitted_at", "scores", "submission__team_id", "submission__team__name"
    )
    for submitted_at, scores, team_id, team_name in rows:
        value = rules.score_value(scores, ordering.label)
        if value is None:
            continue
        if best is None or (value > best if ordering.descending else value < best):
            best = value
            points.append(
                {
                    "at": submitted_at.isoformat(),
                    "value": value,
                    "team": team_name if view.shows_name(team_id, False) else None,
                }
            )
    return points

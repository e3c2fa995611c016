"""Leaderboard reads (selectors): ranked rows, one team's standing, the best score over
time. Each costs one query on top of `access_leaderboard`, whatever the number of teams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Count, F, Max, Q, Subquery, Value, When, Window
from django.db.models.functions import RowNumber

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


def _ranked(view: LeaderboardView, ordering: Ordering):
    """Entries in rank order, each with its rank (ROW_NUMBER among ranked rows), the
    number of rows and of ranked rows: computed by the database over at most one row
    per team, so a page costs one query whatever its offset."""
    qs = LeaderboardEntry.objects.filter(
        phase_split=view.split, scope=view.scope, label=ordering.label
    )
    if view.only_team_id is not None:
        qs = qs.filter(team_id=view.only_team_id)
    value = (
        F("value").desc(nulls_last=True) if ordering.descending else F("value").asc(nulls_last=True)
    )
    order = [value, F("submitted_at").asc(), F("submission_id").asc()]
    unranked = Q(is_baseline=True) | Q(is_host_team=True)
    return qs.annotate(
        # Baselines and the hosts' own entries form their own partitions: they take no rank.
        position=Window(
            RowNumber(), partition_by=[F("is_baseline"), F("is_host_team")], order_by=order
        ),
        total=Window(Count("pk")),
        ranked_total=Window(Count("pk", filter=~unranked)),
    ).order_by(*order)


def _row(view: LeaderboardView, labels: list[str], values: tuple) -> dict[str, Any]:
    (
        team_id,
        team_name,
        submission_id,
        scores,
        submitted_at,
        is_baseline,
        is_host_team,
        wall_time_s,
        method_name,
        position,
    ) = values
    split = view.split
    numbers = rules.ordered_scores(scores, labels)
    named = view.shows_name(team_id, is_baseline)
    row = {
        "rank": None if (is_baseline or is_host_team) else position,
        "team": team_name if named else None,
        "is_own_team": team_id == view.team_id,
        "is_baseline": is_baseline,
        "is_host_team": is_host_team,
        "method_name": method_name if named else "",
        "scores": numbers,
        "display": [rules.display(v, split.leaderboard_decimal_precision) for v in numbers],
        "submitted_at": submitted_at.isoformat(),
    }
    if view.is_host:
        row["team_id"] = team_id
    if view.shows_submission(team_id):
        row["submission_id"] = submission_id
    if split.show_execution_time:
        row["execution_time_s"] = wall_time_s
    return row


@dataclass(frozen=True)
class Page:
    count: int  # rows on the whole leaderboard
    ranked: int  # of which ranked (not baselines, not the hosts' own)
    rows: list[dict[str, Any]]


def _page(view: LeaderboardView, ordering: Ordering, ranked_rows) -> Page:
    """Rows for (pk, position, total, ranked_total) tuples, in their order.

    Ranking sorts every row of the board; it reads only narrow columns. The wide ones
    (scores, names) are fetched for the page's rows alone, by primary key: at 2,000
    teams that halves the database's time.
    """
    ranked_rows = list(ranked_rows)
    if not ranked_rows:
        return Page(0, 0, [])
    labels = rules.labels_of(view.split.leaderboard.schema)
    wide = {
        values[0]: values[1:]
        for values in LeaderboardEntry.objects.filter(
            pk__in=[pk for pk, *_ in ranked_rows]
        ).values_list("pk", *_ROW_FIELDS)
    }
    rows = [_row(view, labels, (*wide[pk], position)) for pk, position, _t, _r in ranked_rows]
    return Page(ranked_rows[0][2], ranked_rows[0][3], rows)


_RANK_FIELDS = ("pk", "position", "total", "ranked_total")


def leaderboard_page(
    view: LeaderboardView, ordering: Ordering, *, offset: int = 0, limit: int | None = None
) -> Page:
    """Rows the reader may see, best first, with ranks; `limit` rows from `offset`.
    Baselines and the hosts' own entries show without a rank and take none."""
    qs = _ranked(view, ordering).values_list(*_RANK_FIELDS)
    page = _page(view, ordering, qs[offset : offset + limit] if limit is not None else qs[offset:])
    if not page.rows and offset:
        # Past the end: the window counts came with no row; count them on their own.
        everything = _ranked(view, ordering).values_list("total", "ranked_total")[:1]
        count, ranked = next(iter(everything), (0, 0))
        return Page(count, ranked, [])
    return page


def leaderboard_own_rows(view: LeaderboardView, ordering: Ordering) -> Page:
    """The reader's team's rows with their ranks on the whole leaderboard."""
    if view.team_id is None:
        return Page(0, 0, [])
    # A filter on a plain column would go into the WHERE clause, before the ranking;
    # one on a window annotation is applied to the ranked rows (Django wraps the query).
    mine = Case(When(team_id=view.team_id, then=Value(1)), default=Value(0))
    qs = (
        _ranked(view, ordering)
        .annotate(is_mine=Window(Max(mine), partition_by=[F("pk")]))
        .filter(is_mine=1)
        .values_list(*_RANK_FIELDS)
    )
    return _page(view, ordering, qs)


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

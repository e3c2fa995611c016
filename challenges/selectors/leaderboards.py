"""Leaderboard reads (selectors): ranked rows, one team's standing, the best score over
time. Each costs one query on top of `access_leaderboard`, whatever the number of teams.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Subquery
from django.utils import dateparse, timezone

from challenges import leaderboard_rules as rules
from challenges.leaderboard_access import LeaderboardView, Scope
from challenges.models import (
    ChallengeParticipation,
    ChallengePhaseSplit,
    LeaderboardEntry,
    ParticipantTeam,
)
from challenges.services.leaderboard_refresh import ranked_results


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


# One query per page, in SQL that PostgreSQL and SQLite (>= 3.25: window functions)
# both run. The ranking reads narrow columns of at most one row per team; only the
# page's rows are joined to their wide columns and team names. A rank is the running
# count of ranked rows (baselines and the hosts' own entries take none), so it needs no
# partition and no second sort. Written as SQL because the ORM cannot join a limited,
# windowed subquery back to its table; it was also half the time of two ORM queries
# (no query compilation, one round trip).
_PAGE_SQL = """
SELECT e.team_id, t.name, e.submission_id, e.scores, e.submitted_at, e.is_baseline,
    e.is_host_team, e.wall_time_s, e.method_name, r.position, r.total, r.ranked_total, r.value
FROM (
    SELECT id, value, submitted_at, submission_id,
        SUM({ranked}) OVER (ORDER BY {key} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS position,
        COUNT(*) OVER () AS total,
        SUM({ranked}) OVER () AS ranked_total
    FROM {entry}
    WHERE phase_split_id = %s AND scope = %s AND label = %s {only_team}
    ORDER BY {key}
    LIMIT %s OFFSET %s
) r
JOIN {entry} e ON e.id = r.id
JOIN {team} t ON t.id = e.team_id
{where}
ORDER BY {outer_key}
"""


def _ranked(
    view: LeaderboardView,
    ordering: Ordering,
    *,
    offset: int = 0,
    limit: int | None = None,
    team_id: int | None = None,
) -> list[_Entry]:
    """Entries in rank order with `position` (rank among ranked rows), `total` and
    `ranked_total` (rows on the whole board), `team_name`; `team_id`: only that team's
    rows, still ranked against everyone's."""
    qn = connection.ops.quote_name
    direction = "DESC" if ordering.descending else "ASC"
    # Missing scores last whatever the direction; ties to the earlier submission.
    key = "(value IS NULL), value {d}, submitted_at, submission_id"
    params: list[Any] = [view.split.pk, view.scope, ordering.label]
    only_team = ""
    if view.only_team_id is not None:
        only_team = "AND team_id = %s"
        params.append(view.only_team_id)
    params += [limit if limit is not None else 2**62, offset]
    where = ""
    if team_id is not None:
        where = "WHERE e.team_id = %s"
        params.append(team_id)
    sql = _PAGE_SQL.format(
        # An entry without the ordering label (a result that lacked it) is listed after
        # the ranked ones, without a rank, as baselines and the hosts' own entries are.
        ranked="CASE WHEN is_baseline OR is_host_team OR value IS NULL THEN 0 ELSE 1 END",
        key=key.format(d=direction),
        outer_key=f"(r.value IS NULL), r.value {direction}, r.submitted_at, r.submission_id",
        entry=qn(LeaderboardEntry._meta.db_table),
        team=qn(ParticipantTeam._meta.db_table),
        only_team=only_team,
        where=where,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [_Entry.decode(row) for row in cursor.fetchall()]


_SCORES = LeaderboardEntry._meta.get_field("scores")


@dataclass(frozen=True)
class _Entry:
    """A ranked row as the page query returns it (no model instances: a tenth of the
    time for 100 rows)."""

    team_id: int
    team_name: str
    submission_id: int
    scores: dict[str, Any]
    submitted_at: dt.datetime
    is_baseline: bool
    is_host_team: bool
    wall_time_s: float | None
    method_name: str
    position: int
    total: int
    ranked_total: int
    value: float | None  # the ordering label's score; None: the result lacked it

    @classmethod
    def decode(cls, row: tuple) -> _Entry:
        values = list(row)
        # What the ORM's converters would do: JSON text to a dict, SQLite's text and
        # integers to datetimes and booleans.
        values[3] = _SCORES.from_db_value(values[3], None, connection)
        at = values[4]
        if isinstance(at, str):
            at = dateparse.parse_datetime(at)
        if timezone.is_naive(at):
            at = timezone.make_aware(at, dt.UTC)
        values[4] = at
        values[5], values[6] = bool(values[5]), bool(values[6])
        return cls(*values)


def _row(
    view: LeaderboardView,
    labels: list[str],
    e: _Entry,
    standings: dict[int, Standing] | None = None,
) -> dict[str, Any]:
    split = view.split
    numbers = rules.ordered_scores(e.scores, labels)
    named = view.shows_name(e.team_id, e.is_baseline)
    unranked = e.is_baseline or e.is_host_team or e.value is None
    row = {
        "rank": None if unranked else int(e.position),
        "team": e.team_name if named else None,
        "is_own_team": e.team_id == view.team_id,
        "is_baseline": e.is_baseline,
        "is_host_team": e.is_host_team,
        "method_name": e.method_name if named else "",
        "scores": numbers,
        "display": [rules.display(v, split.leaderboard_decimal_precision) for v in numbers],
        "submitted_at": e.submitted_at.isoformat(),
    }
    if view.is_host:
        row["team_id"] = e.team_id
    if view.shows_submission(e.team_id):
        row["submission_id"] = e.submission_id
    if split.show_execution_time:
        row["execution_time_s"] = e.wall_time_s
    if standings is not None:
        # A revealed split: the team's move from its public rank (Kaggle's shake-up).
        standing = None if unranked else standings.get(e.team_id)
        row["public_rank"] = standing.rank if standing else None
        row["move"] = move_of(row["public_rank"], row["rank"])
    return row


@dataclass(frozen=True)
class Page:
    count: int  # rows on the whole leaderboard
    ranked: int  # of which ranked (not baselines, not the hosts' own)
    rows: list[dict[str, Any]]


def _page(view: LeaderboardView, entries: list[_Entry]) -> Page:
    if not entries:
        return Page(0, 0, [])
    labels = rules.labels_of(view.split.leaderboard.schema)
    first = entries[0]
    standings = public_standings(view)[1] if view.revealed else None
    return Page(
        int(first.total),
        int(first.ranked_total),
        [_row(view, labels, e, standings) for e in entries],
    )


def leaderboard_page(
    view: LeaderboardView, ordering: Ordering, *, offset: int = 0, limit: int | None = None
) -> Page:
    """Rows the reader may see, best first, with ranks; `limit` rows from `offset`.
    Baselines and the hosts' own entries show without a rank and take none."""
    page = _page(view, _ranked(view, ordering, offset=offset, limit=limit))
    if not page.rows and offset:
        # Past the end: the window counts came with no row; count them on their own.
        return Page(_page(view, _ranked(view, ordering, limit=1)).count, 0, [])
    return page


def leaderboard_own_rows(view: LeaderboardView, ordering: Ordering) -> Page:
    """The reader's team's rows with their ranks on the whole leaderboard."""
    if view.team_id is None:
        return Page(0, 0, [])
    return _page(view, _ranked(view, ordering, team_id=view.team_id))


def leaderboard_history(view: LeaderboardView, ordering: Ordering) -> list[dict[str, Any]]:
    """The best score over time: one point per submission that beat every earlier one
    the reader may see. Baselines are references, not progress: they are left out."""
    split = view.split
    results = ranked_results([split]).filter(submission__is_baseline=False)
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


# ---------------------------------------------------------------- Kaggle's shake-up


def public_split_of(view: LeaderboardView) -> ChallengePhaseSplit | None:
    """The phase's public split (the first with public visibility, as for final-pick
    fallbacks in the leaderboard writer), which a revealed split is compared with."""
    return (
        ChallengePhaseSplit.objects.filter(
            phase_id=view.phase.pk, visibility=ChallengePhaseSplit.Visibility.PUBLIC
        )
        .select_related("leaderboard", "dataset_split")
        .order_by("pk")
        .first()
    )


@dataclass(frozen=True)
class Standing:
    rank: int
    value: float | None


def public_standings(
    view: LeaderboardView,
) -> tuple[ChallengePhaseSplit | None, dict[int, Standing]]:
    """Each team's rank and score on the public leaderboard as everyone saw it (public
    submissions, by the public split's default label), for a revealed split; nothing
    otherwise, or when the phase has no public split to compare with."""
    if not view.revealed:
        return None, {}
    public = public_split_of(view)
    if public is None or public.pk == view.split.pk:
        return None, {}
    public.phase = view.phase
    public_view = dataclasses.replace(view, split=public, scope=Scope.PUBLIC, only_team_id=None)
    ordering = ordering_for(public_view, None)
    standings = {
        e.team_id: Standing(int(e.position), rules.score_value(e.scores, ordering.label))
        for e in _ranked(public_view, ordering)
        if not (e.is_baseline or e.is_host_team)
    }
    return public, standings


def move_of(public_rank: int | None, private_rank: int | None) -> int | None:
    """Places gained (positive) or lost (negative) from the public to the private rank;
    None for a team that was not on the public leaderboard (or is unranked)."""
    if public_rank is None or private_rank is None:
        return None
    return public_rank - private_rank

"""Kaggle's shake-up page and API: once a private split is revealed
(challenges.leaderboard_access), every team's public and private rank and score and its
move. The ranks are the leaderboards' own (`selectors.leaderboards`): two ranked reads."""

from __future__ import annotations

from typing import Any

from challenges import leaderboard_rules as rules
from challenges.leaderboard_access import LeaderboardView
from challenges.selectors.leaderboards import _ranked, move_of, ordering_for, public_standings


def shake_up(view: LeaderboardView) -> dict[str, Any] | None:
    """Every ranked team of the revealed split with its public standing, best private
    rank first; None when the split is not revealed or its phase has no public split."""
    public, standings = public_standings(view)
    if public is None:
        return None
    ordering = ordering_for(view, None)
    teams = []
    for e in _ranked(view, ordering):
        if e.is_baseline or e.is_host_team:
            continue
        standing = standings.get(e.team_id)
        public_rank = standing.rank if standing else None
        teams.append(
            {
                "team": e.team_name if view.shows_name(e.team_id, False) else None,
                "is_own_team": e.team_id == view.team_id,
                "public_rank": public_rank,
                "public_score": standing.value if standing else None,
                "private_rank": int(e.position),
                "private_score": rules.score_value(e.scores, ordering.label),
                "move": move_of(public_rank, int(e.position)),
            }
        )
    return {
        "public_split": public.dataset_split.codename,
        "public_label": rules.default_label(public.leaderboard.schema),
        "private_split": view.split.dataset_split.codename,
        "private_label": ordering.label,
        "teams": teams,
    }

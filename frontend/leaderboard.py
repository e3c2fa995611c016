"""The leaderboard of one phase split, as the page shows it.

A stand-in selector until the `leaderboards` branch's selector lands: the best active
result per team (or the latest, when the split says so), baselines as rows of their own,
filtered by the split's visibility. Results are read only through this function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q

from challenges.access import user_is_challenge_host
from challenges.models import ChallengePhaseSplit, Submission, SubmissionResult
from challenges.selectors import participation_for_user

Visibility = ChallengePhaseSplit.Visibility


@dataclass
class Row:
    rank: int | None
    team: str
    submission: Submission
    scores: dict[str, Any]
    is_baseline: bool
    is_own: bool


@dataclass
class Board:
    split: ChallengePhaseSplit
    labels: list[str]
    order_by: str
    rows: list[Row]
    rank_by: str = ""
    history: list[tuple[Any, float]] = field(default_factory=list)  # (submitted_at, value)
    baselines: list[tuple[str, float]] = field(default_factory=list)


def split_visible_to(user, split: ChallengePhaseSplit, is_host: bool) -> bool:
    return is_host or split.visibility != Visibility.HOST


def higher_is_better(split: ChallengePhaseSplit, label: str) -> bool:
    meta = (split.leaderboard.schema.get("metadata") or {}).get(label) or {}
    if "sort_ascending" in meta:
        return not bool(meta["sort_ascending"])
    return split.is_leaderboard_order_descending


def _number(scores: dict[str, Any], label: str) -> float | None:
    value = scores.get(label)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def leaderboard_for_split(
    *, split: ChallengePhaseSplit, user: AbstractBaseUser | AnonymousUser, order_by: str = ""
) -> Board:
    """Teams ranked by the leaderboard's default label; rows shown sorted by `order_by`."""
    challenge = split.phase.challenge
    is_host = user_is_challenge_host(user, challenge)
    participation = participation_for_user(user, challenge)
    own_team = participation.team_id if participation else None
    labels = split.leaderboard.labels
    default = split.leaderboard.schema.get("default_order_by") or (labels[0] if labels else "")
    order_by = order_by if order_by in labels else default

    results = SubmissionResult.objects.filter(
        phase_split=split,
        is_active=True,
        submission__status__in=[Submission.Status.FINISHED, Submission.Status.PARTIALLY_EVALUATED],
    ).select_related("submission__team")
    if not is_host:
        only_own = (
            split.visibility == Visibility.OWNER_AND_HOST or not split.phase.leaderboard_public
        )
        shown = Q(submission__team_id=own_team) if own_team else Q(pk__in=[])
        if not only_own:
            shown |= Q(submission__is_public=True) | Q(submission__is_baseline=True)
        results = results.filter(shown)

    best_first = higher_is_better(split, default)
    latest = split.show_leaderboard_by_latest_submission
    per_team: dict[int, SubmissionResult] = {}
    baselines: list[SubmissionResult] = []
    history: list[tuple[Any, float]] = []
    for result in results:
        submission = result.submission
        if submission.is_baseline:
            baselines.append(result)
            continue
        value = _number(result.scores, default)
        if value is not None:
            history.append((submission.submitted_at, value))
        current = per_team.get(submission.team_id)
        if current is None or _better(result, current, default, best_first, latest):
            per_team[submission.team_id] = result

    ranked = sorted(
        per_team.values(), key=lambda r: _sort_key(r.scores, r.submission, default, best_first)
    )
    rows = [
        Row(
            rank=i + 1,
            team=r.submission.team.name,
            submission=r.submission,
            scores=r.scores,
            is_baseline=False,
            is_own=r.submission.team_id == own_team,
        )
        for i, r in enumerate(ranked)
    ]
    rows += [
        Row(None, b.submission.team.name, b.submission, b.scores, True, False) for b in baselines
    ]
    sort_first = higher_is_better(split, order_by)
    rows.sort(key=lambda row: _sort_key(row.scores, row.submission, order_by, sort_first))
    return Board(
        split=split,
        labels=labels,
        order_by=order_by,
        rows=rows,
        rank_by=default,
        history=history,
        baselines=[
            (b.submission.method_name or b.submission.team.name, v)
            for b in baselines
            if (v := _number(b.scores, default)) is not None
        ],
    )


def _sort_key(scores: dict[str, Any], submission: Submission, label: str, best_first: bool):
    value = _number(scores, label)
    return (value is None, -(value or 0) if best_first else (value or 0), submission.submitted_at)


def _better(
    new: SubmissionResult, old: SubmissionResult, label: str, best_first: bool, latest: bool
) -> bool:
    if latest:
        return new.submission.submitted_at > old.submission.submitted_at
    a, b = _number(new.scores, label), _number(old.scores, label)
    if a is None:
        return False
    if b is None:
        return True
    return a > b if best_first else a < b

"""Tournament leaderboards (selectors): per round, and cumulative over the last N
resolved rounds. The page, the API and the CSV all read these, so they show the same
numbers. A team's entry in a round is its newest valid submission (the last before the
close: later ones are refused)."""

from __future__ import annotations

from dataclasses import dataclass, field

from challenges.models import (
    ChallengeParticipation,
    ChallengePhase,
    Round,
    RoundSubmission,
    Tournament,
)
from challenges.tournaments.metrics import METRICS, cumulative_standing

Status = RoundSubmission.Status
VALID = (Status.PENDING, Status.SCORING, Status.SCORED)


@dataclass
class RoundRow:
    rank: int | None
    team_id: int
    team: str
    submission_id: int
    source: str
    status: str  # "scored" or "pending" (waiting for targets, or being scored)
    submitted_at: str
    metrics: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "rank": self.rank,
            "team_id": self.team_id,
            "team": self.team,
            "submission": self.submission_id,
            "source": self.source,
            "status": self.status,
            "submitted_at": self.submitted_at,
            **self.metrics,
        }


def _counted(rounds: list[Round]) -> dict[int, dict[int, RoundSubmission]]:
    """round id -> team id -> the team's counted submission, in one query."""
    counted: dict[int, dict[int, RoundSubmission]] = {r.pk: {} for r in rounds}
    if not rounds:
        return counted
    # Banned teams stay off the rankings, as on every leaderboard.
    banned = ChallengeParticipation.objects.filter(
        challenge_id=rounds[0].phase.challenge_id, is_banned=True
    ).values("team_id")
    rows = (
        RoundSubmission.objects.filter(round__in=rounds, status__in=VALID)
        .exclude(team_id__in=banned)
        .select_related("team")
        .order_by("round_id", "team_id", "-submitted_at", "-pk")
    )
    for sub in rows:
        counted[sub.round_id].setdefault(sub.team_id, sub)
    return counted


def _is_scored(sub: RoundSubmission, opened: Round) -> bool:
    return (
        sub.status == Status.SCORED
        and sub.targets_version == opened.targets_version
        and bool(sub.scores)
    )


def _ranked(rows: list[RoundRow], rank_by: str) -> list[RoundRow]:
    scored = sorted(
        (r for r in rows if r.metrics.get(rank_by) is not None),
        key=lambda r: (-r.metrics[rank_by], r.team.lower()),
    )
    for position, row in enumerate(scored, start=1):
        row.rank = position
    rest = sorted((r for r in rows if r.metrics.get(rank_by) is None), key=lambda r: r.team.lower())
    return scored + rest


def round_leaderboard(*, opened: Round, tournament: Tournament) -> list[RoundRow]:
    rows = []
    for sub in _counted([opened])[opened.pk].values():
        scored = _is_scored(sub, opened)
        rows.append(
            RoundRow(
                rank=None,
                team_id=sub.team_id,
                team=sub.team.name,
                submission_id=sub.pk,
                source=sub.source,
                status="scored" if scored else "pending",
                submitted_at=sub.submitted_at.isoformat(),
                metrics={m: (sub.scores[m] if scored else None) for m in METRICS},
            )
        )
    return _ranked(rows, tournament.rank_by)


def resolved_rounds(*, phase: ChallengePhase, last: int) -> list[Round]:
    return list(
        phase.rounds.filter(targets_version__gt=0)
        .select_related("phase")
        .order_by("-number")[:last]
    )


@dataclass
class CumulativeRow:
    rank: int | None
    team_id: int
    team: str
    rounds: int
    metrics: dict[str, float | None]
    by_round: dict[int, float | None]

    def as_dict(self) -> dict:
        return {
            "rank": self.rank,
            "team_id": self.team_id,
            "team": self.team,
            "rounds": self.rounds,
            **self.metrics,
            "by_round": {str(k): v for k, v in self.by_round.items()},
        }


def cumulative_leaderboard(
    *, phase: ChallengePhase, tournament: Tournament
) -> tuple[list[Round], list[CumulativeRow]]:
    """Mean of each metric over the last N resolved rounds a team was scored in, and the
    team's ranking metric per round (the chart)."""
    rounds = resolved_rounds(phase=phase, last=tournament.cumulative_rounds)
    counted = _counted(rounds)
    teams: dict[int, str] = {}
    per_team: dict[int, list[dict | None]] = {}
    by_round: dict[int, dict[int, float | None]] = {}
    for opened in rounds:
        for team_id, sub in counted[opened.pk].items():
            teams[team_id] = sub.team.name
    for team_id in teams:
        per_team[team_id], by_round[team_id] = [], {}
        for opened in sorted(rounds, key=lambda r: r.number):
            sub = counted[opened.pk].get(team_id)
            scores = sub.scores if sub is not None and _is_scored(sub, opened) else None
            per_team[team_id].append(scores)
            by_round[team_id][opened.number] = scores[tournament.rank_by] if scores else None
    rows = []
    for team_id, name in teams.items():
        standing = cumulative_standing(per_team[team_id])
        rows.append(
            CumulativeRow(
                rank=None,
                team_id=team_id,
                team=name,
                rounds=int(standing["rounds"] or 0),
                metrics={m: standing[m] for m in METRICS},
                by_round=by_round[team_id],
            )
        )
    scored = sorted(
        (r for r in rows if r.metrics.get(tournament.rank_by) is not None),
        key=lambda r: (-r.metrics[tournament.rank_by], r.team.lower()),
    )
    for position, row in enumerate(scored, start=1):
        row.rank = position
    rest = [r for r in rows if r.rank is None]
    return sorted(rounds, key=lambda r: r.number), scored + rest


def team_scores_by_round(
    *, phase: ChallengePhase, team_id: int, tournament: Tournament
) -> list[tuple[int, float]]:
    """(round number, ranking metric) for every resolved round the team was scored in:
    the per-team chart."""
    rounds = list(
        phase.rounds.filter(targets_version__gt=0).select_related("phase").order_by("number")
    )
    counted = _counted(rounds)
    points = []
    for opened in rounds:
        sub = counted[opened.pk].get(team_id)
        if sub is not None and _is_scored(sub, opened):
            points.append((opened.number, float(sub.scores[tournament.rank_by])))
    return points

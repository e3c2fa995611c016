"""A new leader on a public split, against the team last seen leading (LeaderWatch):
checked when a finished submission that wrote an entry is fanned out (off the worker's hot
path), and after every other rewrite of a board (toggles, bans, merges, rebuilds:
services.leaderboard_refresh)."""

from __future__ import annotations

from challenges import leaderboard_rules as rules
from challenges.models import ChallengePhaseSplit, LeaderboardEntry, LeaderWatch
from challenges.models.notifications import Kind
from challenges.notifications.events import event_record
from challenges.prepared import Prepared


def split_leader(split: ChallengePhaseSplit) -> int | None:
    """The team ranked first on the split's public board by its default label."""
    schema = split.leaderboard.schema
    label = rules.resolve_label(schema, None)
    descending = rules.is_descending(schema, label, split.is_leaderboard_order_descending)
    return next(iter(_LEADER[descending](split.pk, label)), None)


def _leader(order: str) -> Prepared:
    return Prepared(
        lambda split_id, label: (
            LeaderboardEntry.objects.filter(
                phase_split_id=split_id,
                scope=LeaderboardEntry.Scope.PUBLIC,
                label=label,
                is_baseline=False,
                is_host_team=False,
                value__isnull=False,
            )
            .order_by(order, "submitted_at", "submission_id")
            .values_list("team_id", flat=True)[:1]
        ),
        int,
        str,
    )


# Asked at every finished submission's fan-out (challenges.prepared), by direction.
_LEADER = {True: _leader("-value"), False: _leader("value")}
_PUBLIC_SPLITS = Prepared(
    lambda phase_id: ChallengePhaseSplit.objects.filter(
        phase_id=phase_id, visibility=ChallengePhaseSplit.Visibility.PUBLIC
    ).select_related("leaderboard", "phase"),
    int,
)
_WATCH = Prepared(
    lambda split_id: LeaderWatch.objects.select_for_update().filter(phase_split_id=split_id),
    int,
)


def leaders_check(*, phase_id: int) -> int:
    """Record a NEW_LEADER event for each public split of the phase whose leader changed;
    runs inside the fan-out's transaction (the watch row is locked, so two fan-outs agree)."""
    told = 0
    for split in _PUBLIC_SPLITS(phase_id):
        leader = split_leader(split)
        watch = _locked_watch(split)
        if leader is None or watch.team_id == leader:
            continue
        first = watch.team_id is None
        watch.team_id = leader
        watch.save(update_fields=["team_id"])
        if first:
            continue  # the first result on a board is no news of a new leader
        event_record(
            kind=Kind.NEW_LEADER,
            challenge_id=split.phase.challenge_id,
            phase_split_id=split.pk,
            team_id=leader,
        )
        told += 1
    return told


def _locked_watch(split: ChallengePhaseSplit) -> LeaderWatch:
    """The split's watch row, locked: one statement once it exists (every fan-out of a
    finished submission asks), its creation only the first time."""
    watch = next(iter(_WATCH(split.pk)), None)
    if watch is None:
        LeaderWatch.objects.get_or_create(phase_split=split)
        watch = _WATCH(split.pk)[0]
    return watch

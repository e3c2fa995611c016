"""A new leader on a public split: checked when a finished submission's event is fanned
out (off the worker's hot path), against the team last seen leading (LeaderWatch)."""

from __future__ import annotations

from challenges import leaderboard_rules as rules
from challenges.models import ChallengePhaseSplit, LeaderboardEntry, LeaderWatch
from challenges.models.notifications import Kind
from challenges.notifications.events import event_record


def split_leader(split: ChallengePhaseSplit) -> int | None:
    """The team ranked first on the split's public board by its default label."""
    schema = split.leaderboard.schema
    label = rules.resolve_label(schema, None)
    descending = rules.is_descending(schema, label, split.is_leaderboard_order_descending)
    entries = LeaderboardEntry.objects.filter(
        phase_split=split,
        scope=LeaderboardEntry.Scope.PUBLIC,
        label=label,
        is_baseline=False,
        is_host_team=False,
        value__isnull=False,
    )
    order = "-value" if descending else "value"
    return (
        entries.order_by(order, "submitted_at", "submission_id")
        .values_list("team_id", flat=True)
        .first()
    )


def leaders_check(*, phase_id: int) -> int:
    """Record a NEW_LEADER event for each public split of the phase whose leader changed;
    runs inside the fan-out's transaction (the watch row is locked, so two fan-outs agree)."""
    splits = ChallengePhaseSplit.objects.filter(
        phase_id=phase_id, visibility=ChallengePhaseSplit.Visibility.PUBLIC
    ).select_related("leaderboard", "phase")
    told = 0
    for split in splits:
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
    locked = LeaderWatch.objects.select_for_update()
    watch = next(iter(locked.filter(phase_split=split)), None)
    if watch is None:
        watch, _ = LeaderWatch.objects.get_or_create(phase_split=split)
        watch = locked.get(pk=watch.pk)
    return watch

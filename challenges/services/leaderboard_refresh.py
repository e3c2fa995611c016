"""Leaderboard entries: derived from results, rewritten wherever something they depend on
changes, in the same transaction as the change.

What an entry depends on, and who asks `leaderboard_refresh` (the one entry point) to
rewrite it:

- a result recorded, or deactivated by a re-run: `submission_record_outcome`,
  `submission_rerun`, `phase_rescore` (challenges.services.submissions);
- a new public submission replacing the team's previous one: `submission_create`;
- is_public, a final pick, a baseline mark: `submission_set_public`,
  `submission_set_final`, `submission_set_baseline` (one toggle in
  challenges.services.submission_choices);
- a ban: `participation_set_banned`;
- a team merge (the requesting team's submissions move to the receiving team):
  `team_merge_accept` (challenges.services.merges);
- a new bundle version (labels, directions): `challenge_create_from_bundle`, each phase.

Which scopes a result enters and which result is a team's entry are decided once
(`result_scopes`, `winning_entry`), for the full rebuild and the incremental merge alike.

Split visibility and the reveal at the end of a phase change only which scope a reader
gets (see challenges.leaderboard_access), never the entries: all three scopes are kept.

Locks: a team's entries are rewritten under the row lock of the team
(`ParticipantTeam`), taken after any submission row the caller updated. Services that
change several submissions of a team (one public submission per team, the final-pick
cap) first take the team's participation lock, the one quotas use, so they never wait
on each other while holding submission rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from challenges import leaderboard_rules as rules
from challenges.models import (
    ChallengeParticipation,
    ChallengePhase,
    ChallengePhaseSplit,
    LeaderboardEntry,
    ParticipantTeam,
    Submission,
    SubmissionResult,
)
from challenges.notifications.leaders import leaders_check
from challenges.prepared import Prepared, raw_rows

Scope = LeaderboardEntry.Scope
# Only these submissions rank; a partially evaluated one only on the splits it has.
RANKED_STATUSES = Submission.RANKED

_RESULT_FIELDS = (
    "phase_split_id",
    "submission_id",
    "submission__submitted_at",
    "scores",
    "submission__is_public",
    "submission__is_final",
    "submission__is_baseline",
    "submission__wall_time_s",
    "submission__method_name",
    "submission__team_id",
)


@dataclass(frozen=True)
class _Result:
    split_id: int
    submission_id: int
    submitted_at: Any
    scores: dict[str, Any]
    is_public: bool
    is_final: bool
    is_baseline: bool
    wall_time_s: float | None
    method_name: str
    team_id: int

    @property
    def candidate(self) -> rules.Candidate:
        return rules.Candidate(self.submission_id, self.submitted_at, self.scores or {})


@dataclass(frozen=True)
class _Flags:
    is_host_team: bool = False
    is_banned: bool = False


# The order entries of a result are written in (the full rebuild's order).
SCOPES = (Scope.PUBLIC, Scope.ALL, Scope.FINAL)


def result_scopes(
    *, is_public: bool, is_baseline: bool, is_host_team: bool, in_final_picks: bool
) -> tuple[str, ...]:
    """The scopes a team's result competes in: the one rule of the full rebuild and the
    incremental merge. Baselines show everywhere; the hosts' own team only under ALL;
    others publicly when public, and as final when among the team's final picks."""
    admitted = {
        Scope.PUBLIC: is_baseline or (is_public and not is_host_team),
        Scope.ALL: True,
        Scope.FINAL: is_baseline or (not is_host_team and in_final_picks),
    }
    return tuple(scope for scope in SCOPES if admitted[scope])


def winning_entry(
    split: ChallengePhaseSplit, label: str, candidates: Iterable[rules.Candidate]
) -> rules.Candidate | None:
    """Which of a team's results is its entry for `label` on `split`: the best, or the
    latest with `show_leaderboard_by_latest_submission`. The rebuild passes all of a
    team's results; the merge passes the standing entry and the new result."""
    descending = rules.is_descending(
        split.leaderboard.schema, label, split.is_leaderboard_order_descending
    )
    return rules.pick_entry(
        candidates,
        label=label,
        descending=descending,
        latest=split.show_leaderboard_by_latest_submission,
    )


def ranked_results(splits: Iterable[ChallengePhaseSplit]):
    """Active results of ranked submissions on `splits` (the rows entries derive from).
    Late submissions (made after their phase ended) are scored but never ranked.

    Selected by split ids, which `result_active_split_idx` serves, rather than by the
    submissions' phase: with stale statistics (right after a bulk load) PostgreSQL
    planned the latter as a nested loop re-reading that index per submission, minutes
    at 100,000 results.
    """
    return SubmissionResult.objects.filter(
        phase_split_id__in=[split.pk for split in splits],
        is_active=True,
        submission__status__in=RANKED_STATUSES,
        submission__is_late=False,
    )


def _splits(phase: ChallengePhase) -> list[ChallengePhaseSplit]:
    return list(
        ChallengePhaseSplit.objects.filter(phase=phase).select_related("leaderboard").order_by("pk")
    )


def _public_split(splits: list[ChallengePhaseSplit]) -> ChallengePhaseSplit | None:
    """The split whose ranking stands in for a team's final picks when it made none."""
    for split in splits:
        if split.visibility == ChallengePhaseSplit.Visibility.PUBLIC:
            return split
    return None


def _final_picks(
    phase: ChallengePhase, splits: list[ChallengePhaseSplit], results: list[_Result]
) -> set[int]:
    """The team's final picks; when it picked none, its best `max_final_submissions`
    submissions on the public split (all of them when the phase sets no cap)."""
    own = [r for r in results if not r.is_baseline]
    picked = {r.submission_id for r in own if r.is_final}
    if picked:
        return picked
    public = _public_split(splits)
    if public is None:
        return {r.submission_id for r in own}
    schema = public.leaderboard.schema
    label = rules.default_label(schema)
    descending = rules.is_descending(schema, label, public.is_leaderboard_order_descending)
    on_public = sorted(
        (r for r in own if r.split_id == public.pk),
        key=lambda r: rules.rank_key(
            rules.score_value(r.scores, label), r.submitted_at, r.submission_id, descending
        ),
    )
    cap = phase.max_final_submissions
    return {r.submission_id for r in (on_public[:cap] if cap else on_public)}


def _team_entries(
    phase: ChallengePhase,
    splits: list[ChallengePhaseSplit],
    team_id: int,
    flags: _Flags,
    results: list[_Result],
) -> list[LeaderboardEntry]:
    if flags.is_banned or not results:
        return []
    host = flags.is_host_team
    picks = _final_picks(phase, splits, results)
    by_split: dict[int, list[_Result]] = defaultdict(list)
    for r in results:
        by_split[r.split_id].append(r)
    scopes_of = {
        r.submission_id: result_scopes(
            is_public=r.is_public,
            is_baseline=r.is_baseline,
            is_host_team=host,
            in_final_picks=r.submission_id in picks,
        )
        for r in results
    }
    entries = []
    for split in splits:
        rows = by_split.get(split.pk, [])
        if not rows:
            continue
        for scope in SCOPES:
            pool = [r for r in rows if scope in scopes_of[r.submission_id]]
            baselines = [r for r in pool if r.is_baseline]
            others = {r.submission_id: r for r in pool if not r.is_baseline}
            for label in rules.labels_of(split.leaderboard.schema):
                chosen = list(baselines)
                best = winning_entry(split, label, (r.candidate for r in others.values()))
                if best is not None:
                    chosen.append(others[best.submission_id])
                entries.extend(
                    LeaderboardEntry(
                        phase_split_id=split.pk,
                        team_id=team_id,
                        scope=scope,
                        label=label,
                        submission_id=r.submission_id,
                        value=rules.score_value(r.scores, label),
                        scores=r.scores or {},
                        submitted_at=r.submitted_at,
                        is_baseline=r.is_baseline,
                        is_host_team=host,
                        wall_time_s=r.wall_time_s,
                        method_name=r.method_name[:1000],
                    )
                    for r in chosen
                )
    return entries


def _load(queryset) -> list[_Result]:
    return [_Result(*row) for row in queryset.values_list(*_RESULT_FIELDS)]


def _flags(phase: ChallengePhase, team_ids: Iterable[int] | None = None) -> dict[int, _Flags]:
    qs = ChallengeParticipation.objects.filter(challenge_id=phase.challenge_id)
    if team_ids is not None:
        qs = qs.filter(team_id__in=list(team_ids))
    return {
        team_id: _Flags(is_host_team=host, is_banned=banned)
        for team_id, host, banned in qs.values_list("team_id", "is_host_team", "is_banned")
    }


def leaderboard_refresh(
    *,
    phase: ChallengePhase,
    team_ids: Iterable[int] | None = None,
    recorded: Submission | None = None,
    scores_by_split: dict[int, dict[str, Any]] | None = None,
    splits: Iterable[ChallengePhaseSplit] | None = None,
) -> int:
    """The one place entries are rewritten, asked by the submission transitions (a result
    recorded or deactivated), the toggles (public, final, baseline, a ban) and a new
    bundle version. Returns how many entries it wrote.

    - `recorded` with `scores_by_split`: a submission's first active results, merged into
      its team's entries (`leaderboard_add_results`, the hot path);
    - `team_ids`: something of these teams changed; their entries are rewritten;
    - neither: the whole phase is rewritten (`leaderboard_rebuild`).
    """
    if recorded is not None:
        return leaderboard_add_results(
            submission=recorded, scores_by_split=scores_by_split or {}, splits=splits
        )
    with transaction.atomic():
        if team_ids is None:
            written = leaderboard_rebuild(phase=phase)
        else:
            written = sum(
                leaderboard_refresh_team(phase=phase, team_id=team_id)
                for team_id in sorted(set(team_ids))
            )
        # A toggle, a ban, a merge or a new bundle version may change who leads; a recorded
        # result that wrote no entry cannot, and its fan-out skips the check.
        leaders_check(phase_id=phase.pk)
    return written


def leaderboard_refresh_team(*, phase: ChallengePhase, team_id: int) -> int:
    """Rewrite one team's entries on every split of `phase`. Returns how many it wrote."""
    with transaction.atomic():
        # Two writers for one team (a result and a toggle) would otherwise both delete,
        # then both insert: the lock makes the second see the first's rows and replace them.
        list(ParticipantTeam.objects.select_for_update().filter(pk=team_id).values_list("pk"))
        splits = _splits(phase)
        results = _load(ranked_results(splits).filter(submission__team_id=team_id))
        flags = _flags(phase, [team_id]).get(team_id, _Flags())
        entries = _team_entries(phase, splits, team_id, flags, results)
        LeaderboardEntry.objects.filter(
            phase_split_id__in=[s.pk for s in splits], team_id=team_id
        ).delete()
        LeaderboardEntry.objects.bulk_create(entries)
    return len(entries)


def leaderboard_add_results(
    *,
    submission: Submission,
    scores_by_split: dict[int, dict[str, Any]],
    splits: Iterable[ChallengePhaseSplit] | None = None,
) -> int:
    """Merge a newly finished submission into its team's entries. Returns rows written.

    The hot path: run for every recorded result, so it must not read all of a team's
    results (a team with 800 submissions would pay ~50 ms). It is exact because the
    submission had no active result before (a first attempt has none; a re-run
    deactivated them and refreshed the team): adding a candidate can only replace an
    entry by a better (or, in latest mode, later) one, and baselines are rows of their
    own. The one non-monotonic case, final-pick fallback under a cap (a new submission
    may push another out of the team's top on the public split), and banned teams, take
    the full `leaderboard_refresh_team`.
    """
    phase = submission.phase
    team_id = submission.team_id
    if submission.is_late:
        # Scored, shown to its team, never ranked (is_late never changes once made).
        return 0
    # No savepoint: inside submission_record_outcome's transaction (the hot path), an
    # error here fails the whole outcome anyway; two round trips fewer per result.
    with transaction.atomic(savepoint=False):
        # One read, which also takes the team's lock (see `_standing`): the row as it is
        # now (the caller's object may predate the outcome or a toggle), whether the team
        # picked finals, and its flags in the challenge.
        (
            status,
            is_public,
            is_final,
            is_baseline,
            submitted_at,
            wall_time_s,
            method_name,
            has_picks,
            host,
            banned,
        ) = _standing(submission_id=submission.pk, phase=phase, team_id=team_id)
        fallback_capped = bool(phase.max_final_submissions) and not has_picks
        if banned or fallback_capped:
            return leaderboard_refresh_team(phase=phase, team_id=team_id)
        splits = {split.pk: split for split in (_splits(phase) if splits is None else splits)}
        if status not in RANKED_STATUSES:
            return 0
        # A team's picks are its final submissions; with no cap, every submission of a
        # team that picked none stands in for its picks (as in `_final_picks`).
        scopes = result_scopes(
            is_public=is_public,
            is_baseline=is_baseline,
            is_host_team=host,
            in_final_picks=is_final or not has_picks,
        )
        existing = {
            (split_id, scope, label): (pk, sid, value, at)
            for pk, split_id, scope, label, sid, value, at in _TEAM_ENTRIES(team_id, phase.pk)
            if split_id in splits
        }
        stale: list[int] = []
        fresh: list[LeaderboardEntry] = []
        for split_id, scores in scores_by_split.items():
            split = splits[split_id]
            new = rules.Candidate(submission.pk, submitted_at, scores or {})
            for label in rules.labels_of(split.leaderboard.schema):
                for scope in scopes:
                    old = existing.get((split_id, scope, label))
                    if not is_baseline and old is not None:
                        old_pk, old_sid, old_value, old_at = old
                        standing = rules.Candidate(old_sid, old_at, {label: old_value})
                        if winning_entry(split, label, (standing, new)) is not new:
                            continue
                        stale.append(old_pk)
                    fresh.append(
                        LeaderboardEntry(
                            phase_split_id=split_id,
                            team_id=team_id,
                            scope=scope,
                            label=label,
                            submission_id=submission.pk,
                            value=rules.score_value(scores, label),
                            scores=scores or {},
                            submitted_at=submitted_at,
                            is_baseline=is_baseline,
                            is_host_team=host,
                            wall_time_s=wall_time_s,
                            method_name=method_name[:1000],
                        )
                    )
        if stale:
            LeaderboardEntry.objects.filter(pk__in=stale).delete()
        LeaderboardEntry.objects.bulk_create(fresh)
    return len(fresh)


# The team's entries on the phase (the splits by their phase: one shape of statement,
# built and compiled once per process, challenges.prepared).
_TEAM_ENTRIES = Prepared(
    lambda team_id, phase_id: LeaderboardEntry.objects.filter(
        phase_split_id__in=ChallengePhaseSplit.objects.filter(phase_id=phase_id).values("pk"),
        team_id=team_id,
        is_baseline=False,
    ).values_list(
        "pk", "phase_split_id", "scope", "label", "submission_id", "value", "submitted_at"
    ),
    int,
    int,
)


# The standing read of `leaderboard_add_results`, written out: as an ORM query (Exists and
# two Subqueries) it cost ~2 ms of CPU per recorded result to compile, this ~0.3 ms.
# Through `raw_rows` (Submission.objects.raw's instances) the row's columns get the
# backend's conversions (dates on SQLite); the participation is unique per (challenge,
# team), so the join adds no row.
_STANDING_SQL = f"""
    SELECT s.id, s.status, s.is_public, s.is_final, s.is_baseline, s.submitted_at,
           s.wall_time_s, s.method_name,
           EXISTS (
               SELECT 1 FROM {Submission._meta.db_table} f
               WHERE f.phase_id = %s AND f.team_id = %s AND f.is_final
           ) AS has_picks,
           p.is_host_team AS team_is_host, p.is_banned AS team_is_banned
    FROM {Submission._meta.db_table} s
    LEFT JOIN {ChallengeParticipation._meta.db_table} p
        ON p.challenge_id = %s AND p.team_id = s.team_id
    WHERE s.id = %s
"""  # noqa: S608 - table names from the models; values are parameters
_LOCK_TEAM = Prepared(
    lambda team: ParticipantTeam.objects.select_for_update().filter(pk=team).values_list("pk"), int
)


def _standing(*, submission_id: int, phase: ChallengePhase, team_id: int) -> tuple:
    """The standing row, with the team's row lock taken."""
    # The lock first, in a statement of its own: a read that waits for a row lock sees the
    # other rows of its join as they were before the wait (READ COMMITTED), so a ban or a
    # final pick committed by the lock's holder would be missed by a joined read.
    _LOCK_TEAM(team_id)
    params = [phase.pk, team_id, phase.challenge_id, submission_id]
    rows = raw_rows(Submission, _STANDING_SQL, params)
    if not rows:
        raise Submission.DoesNotExist(f"submission {submission_id} does not exist")
    row = rows[0]
    return (
        row.status,
        row.is_public,
        row.is_final,
        row.is_baseline,
        row.submitted_at,
        row.wall_time_s,
        row.method_name,
        bool(row.has_picks),
        bool(row.team_is_host),  # NULL: the team takes no part (as for the rebuild)
        bool(row.team_is_banned),
    )


def leaderboard_rebuild(*, phase: ChallengePhase, batch_size: int = 5000) -> int:
    """Rewrite every entry of a phase from its results (after a new bundle version, or
    to load data in bulk). Returns how many entries it wrote."""
    with transaction.atomic():
        splits = _splits(phase)
        by_team: dict[int, list[_Result]] = defaultdict(list)
        for r in _load(ranked_results(splits)):
            by_team[r.team_id].append(r)
        flags = _flags(phase)
        LeaderboardEntry.objects.filter(phase_split_id__in=[s.pk for s in splits]).delete()
        written = 0
        batch: list[LeaderboardEntry] = []
        for team_id, results in by_team.items():
            batch.extend(
                _team_entries(phase, splits, team_id, flags.get(team_id, _Flags()), results)
            )
            if len(batch) >= batch_size:
                LeaderboardEntry.objects.bulk_create(batch)
                written += len(batch)
                batch = []
        LeaderboardEntry.objects.bulk_create(batch)
        written += len(batch)
    return written

"""The lost-worker policy, one rule for submissions and tournament model runs alike: work
whose worker died (or stopped answering past its deadline) runs again once, since the
crash was probably not its fault; work that takes a second worker down fails saying so.

Each caller owns its state machine and says how to retry and how to fail one row; this
module decides which of the two happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Workers the same work may take down; at this many it fails instead of running again.
MAX_LOST = 2


@dataclass
class LostWork:
    requeued: int = 0
    failed: int = 0


def lost_work_recover(
    rows: Iterable[tuple],
    *,
    retry: Callable[[tuple], bool],
    fail: Callable[[tuple], bool],
    max_lost: int = MAX_LOST,
) -> LostWork:
    """`rows` are `(pk, lost_count, ...)` of work whose worker is gone; `retry(row)` and
    `fail(row)` return True when they moved the row (someone else may have got there first)."""
    outcome = LostWork()
    for row in rows:
        # This death counts too: lost_count is the number of workers it took down before.
        if row[1] + 1 >= max_lost:
            outcome.failed += bool(fail(row))
        elif retry(row):
            outcome.requeued += 1
    return outcome

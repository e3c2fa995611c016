"""How much a bench run does: the sizes of each part, for a full run and for `--quick`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    warmup: int  # submissions before the sequential run, as one burst (warms both pool processes)
    sequential: int
    bare_calls: int
    burst: int
    sleepy_warmup: int
    sleepy_burst: int
    upload_bytes: int
    board_teams: int  # the leaderboard read: teams, finished submissions, timed reads
    board_submissions: int
    board_reads: int
    code_runs: int
    realistic_burst: int  # the tabular starter's script over REST
    realistic_bare_calls: int
    e2e_rounds: int  # per submitter, 8 submitters

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            warmup=10,
            sequential=200,
            bare_calls=2000,
            burst=300,
            sleepy_warmup=4,
            sleepy_burst=60,
            upload_bytes=1024**3,
            board_teams=2000,
            board_submissions=100_000,
            board_reads=500,
            code_runs=50,
            realistic_burst=200,
            realistic_bare_calls=300,
            e2e_rounds=10,
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            warmup=10,
            sequential=40,
            bare_calls=500,
            burst=60,
            sleepy_warmup=4,
            sleepy_burst=16,
            upload_bytes=128 * 1024**2,
            board_teams=400,
            board_submissions=20_000,
            board_reads=100,
            code_runs=15,
            realistic_burst=60,
            realistic_bare_calls=100,
            e2e_rounds=4,
        )

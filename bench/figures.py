"""The measurements. Imported only after django.setup()."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.scenario import PHASE, Arena, Cast, Poller
from bench.services import BenchError, Worker, postgres_cpu_seconds, tree_cpu_seconds
from challenges.models import Submission

SEQUENTIAL_POLL_S = 0.002
BURST_POLL_S = 0.005


# ---------------------------------------------------------------- bare evaluate()


def _call(evaluate, annotation: Path, submission: Path) -> dict[str, Any]:
    """As workers/sandbox/child.py calls it."""
    return evaluate(
        str(annotation), str(submission), PHASE, submission_metadata={"id": 0, "attempt": 1}
    )


def bare_loop(evaluate, annotation: Path, submission: Path, *, calls: int) -> float:
    """Seconds per call of evaluate() in a plain loop, after a few unmeasured calls."""
    for _ in range(min(calls, 50)):
        _call(evaluate, annotation, submission)
    started = time.perf_counter()
    for _ in range(calls):
        _call(evaluate, annotation, submission)
    return (time.perf_counter() - started) / calls


def bare_parallel(
    evaluate, annotation: Path, submission: Path, *, calls: int, threads: int = 2
) -> float:
    """Calls per second of `threads` threads sharing `calls` calls of evaluate()."""
    left = [calls]
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            _call(evaluate, annotation, submission)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return calls / (time.perf_counter() - started)


# ---------------------------------------------------------------- through the platform


@dataclass
class Sequential:
    """One submission in flight at a time."""

    ids: list[int] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)  # inside submission_create()
    latency_s: list[float] = field(default_factory=list)  # accepted -> result row visible
    accepted_at: list[float] = field(default_factory=list)  # wall clock, for the breakdown


def sequential(arena: Arena, cast: Cast, poller: Poller, *, count: int) -> Sequential:
    run = Sequential()
    for _ in range(count):
        before = time.perf_counter()
        submission = arena.submit(cast)
        accepted = time.perf_counter()
        accepted_wall = time.time()
        visible = poller.wait_one(submission.pk, interval=SEQUENTIAL_POLL_S, timeout=60)
        run.ids.append(submission.pk)
        run.submit_s.append(accepted - before)
        run.latency_s.append(visible - accepted)
        run.accepted_at.append(accepted_wall)
    return run


@dataclass
class Burst:
    ids: list[int]
    count: int
    submit_s: float  # creating them all
    total_s: float  # first accepted -> last result row visible

    @property
    def throughput(self) -> float:
        return self.count / self.total_s

    @property
    def submit_rate(self) -> float:
        return self.count / self.submit_s


def burst(arena: Arena, cast: Cast, poller: Poller, *, count: int, timeout: float) -> Burst:
    """`count` submissions created as fast as one thread can, then waited for."""
    ids = []
    started = time.perf_counter()
    first_accepted = None
    for _ in range(count):
        ids.append(arena.submit(cast).pk)
        if first_accepted is None:
            first_accepted = time.perf_counter()
    submitted = time.perf_counter()
    last_visible = poller.wait_all(ids, interval=BURST_POLL_S, timeout=timeout)
    return Burst(
        ids=ids, count=count, submit_s=submitted - started, total_s=last_visible - first_accepted
    )


@dataclass
class Drain:
    count: int
    total_s: float  # add_consumer -> last result row visible
    worker_cpu_s: float  # the worker's whole process tree, over total_s
    postgres_cpu_s: float  # the PostgreSQL backends of the bench database

    @property
    def rate(self) -> float:
        return self.count / self.total_s


def drain(
    arena: Arena,
    cast: Cast,
    poller: Poller,
    worker: Worker,
    *,
    count: int,
    timeout: float,
    database: str,
) -> Drain:
    """The worker alone: `count` submissions queue up while it does not consume, then it
    drains them (from `add_consumer` to the last result row). Also what that cost in CPU."""
    from evalserver.celery import app

    node = worker.node.replace("%h", socket.gethostname())
    queue = app.conf.task_default_queue
    reply = app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=10)
    if not reply:
        raise BenchError(f"the worker {node} did not answer cancel_consumer")
    try:
        ids = [arena.submit(cast).pk for _ in range(count)]
    finally:
        worker_cpu = tree_cpu_seconds(worker.proc.pid)
        postgres_cpu = postgres_cpu_seconds(database)
        started = time.perf_counter()
        reply = app.control.add_consumer(queue, destination=[node], reply=True, timeout=10)
    if not reply:
        raise BenchError(f"the worker {node} did not answer add_consumer")
    done = poller.wait_all(ids, interval=BURST_POLL_S, timeout=timeout)
    return Drain(
        count=count,
        total_s=done - started,
        worker_cpu_s=tree_cpu_seconds(worker.proc.pid) - worker_cpu,
        postgres_cpu_s=postgres_cpu_seconds(database) - postgres_cpu,
    )


@dataclass
class FirstFinished:
    approve_s: float  # challenge_approve() + entering the team
    submit_s: float
    total_s: float  # start of approval -> result row visible


def approve_to_first_finished(arena: Arena, cast: Cast, poller: Poller) -> FirstFinished:
    """`arena` is loaded but not approved; the worker has never seen its script."""
    started = time.perf_counter()
    arena.approve_and_enter(cast)
    approved = time.perf_counter()
    submission = arena.submit(cast)
    accepted = time.perf_counter()
    visible = poller.wait_one(submission.pk, interval=SEQUENTIAL_POLL_S, timeout=120)
    return FirstFinished(
        approve_s=approved - started, submit_s=accepted - approved, total_s=visible - started
    )


# ---------------------------------------------------------------- where the time goes


def breakdown(run: Sequential) -> dict[str, list[float]]:
    """Per submission, from the worker's own timestamps (same machine, same clock).

    started_at is taken just before the claim's UPDATE, finished_at just before the
    outcome transaction; so:

    to_claim:   accepted -> claim starts (Redis, Celery's hand-off to a pool process, the
                phase-resources query)
    prepare:    claim starts -> outcome transaction starts, minus the sandbox (the claim
                UPDATE and its commit, reloading the submission, script and split lookups,
                staging folders, the warm parent's round trip, reading the report)
    sandbox:    the child's wall time as the worker measured it (fork, limits, evaluate())
    to_visible: outcome transaction starts -> result row seen here (its UPDATE, split
                lookup, result UPDATE and INSERT, commit; plus this process's polling)
    """
    rows = {
        row["pk"]: row
        for row in Submission.objects.filter(pk__in=run.ids).values(
            "pk", "started_at", "finished_at", "wall_time_s"
        )
    }
    parts: dict[str, list[float]] = {"to_claim": [], "prepare": [], "sandbox": [], "to_visible": []}
    for pk, accepted, latency in zip(run.ids, run.accepted_at, run.latency_s, strict=True):
        row = rows[pk]
        started = row["started_at"].timestamp()
        finished = row["finished_at"].timestamp()
        sandbox = row["wall_time_s"] or 0.0
        parts["to_claim"].append(started - accepted)
        parts["prepare"].append(finished - started - sandbox)
        parts["sandbox"].append(sandbox)
        parts["to_visible"].append(accepted + latency - finished)
    return parts


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def pool_timeline(ids: list[int]) -> dict[str, list[float]]:
    """How a burst kept each pool process busy, from the worker's own timestamps.

    busy: claim starts -> outcome transaction starts, minus the sandbox's wall time
    gap:  one outcome transaction starts -> the same pool process's next claim starts
          (the outcome's queries and commit, the ack, fetching and handing over the next
          message, the phase-resources query)
    """
    rows = Submission.objects.filter(pk__in=ids).values_list(
        "worker", "started_at", "finished_at", "wall_time_s"
    )
    by_process: dict[str, list[tuple]] = {}
    for worker, started, finished, sandbox in rows:
        process = worker.partition("#")[0]  # node/pid; the rest names one claim
        by_process.setdefault(process, []).append((started, finished, sandbox or 0.0))
    parts: dict[str, list[float]] = {"busy": [], "gap": []}
    for runs in by_process.values():
        runs.sort()
        for started, finished, sandbox in runs:
            parts["busy"].append((finished - started).total_seconds() - sandbox)
        for (_, finished, _), (started, _, _) in zip(runs, runs[1:], strict=False):
            parts["gap"].append((started - finished).total_seconds())
    return parts

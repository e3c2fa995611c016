"""`python -m bench.profile_worker [-n 200]`: the worker's own CPU per submission, in process.

The tabular starter's sample submission, uploaded N times (through `submission_create`,
its broker messages caught), then each one through the Celery task's body as a pool
process runs it (`workers.evaluate_submission`), and the tasks that sends (the event's
fan-out and anything it sends) the same way. Measured in this process only: the warm
parent and the sandboxed child it forks are other processes, so their CPU is not counted.

Prints, per submission, the CPU of this process and the SQL statements sent, by task; then
the same submissions' top profile items (cProfile, a separate pass: profiling slows
everything it measures). Uses DATABASE_URL (default: the local server's
`evalserver_profile`), which it migrates and FLUSHES.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path


def _environment(folder: Path) -> None:
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evalserver_profile")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "evalserver.settings",
            "MEDIA_ROOT": str(folder / "media"),
            "EVALSERVER_VAR_DIR": str(folder / "var"),
            "EVALUATION_CACHE_DIR": str(folder / "cache"),
            "DEBUG": os.environ.get("DEBUG", "false"),
            # Sent as the worker sends them, kept in memory instead of printed.
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        }
    )
    # Messages are caught in process (below); the broker is never reached.
    os.environ.setdefault("CELERY_BROKER_URL", "memory://localhost/")


class _Sent:
    """The app's send_task, caught: (task name, args) in the order sent."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, list]] = []

    def __call__(self, name, args=None, kwargs=None, **options):
        self.tasks.append((name, list(args or ())))

    def take(self) -> list[tuple[str, list]]:
        taken, self.tasks = self.tasks, []
        return taken


class _Counter:
    """Statements sent to the database, by the task that sent them (execute_wrapper: no
    debug cursor, which would cost CPU of its own)."""

    def __init__(self) -> None:
        self.by_task: dict[str, int] = defaultdict(int)
        self.task = ""
        self.last: list[tuple[str, str]] = []  # the last submission's, with their task

    def __call__(self, execute, sql, params, many, context):
        self.by_task[self.task] += 1
        self.last.append((self.task, sql))
        return execute(sql, params, many, context)


def _arena(count: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from bench.realistic import STARTER, _arena, _teams
    from bench.scenario import Cast

    cast = Cast.create()
    phase, body, _root = _arena(cast)
    phase = type(phase).objects.select_related("challenge").get(pk=phase.pk)  # its new quotas
    _teams(cast, phase.challenge, count=8)
    from django.contrib.auth import get_user_model

    from challenges.services.submissions import submission_create
    from challenges.submission_access import access_submitter

    users = list(get_user_model().objects.filter(username__startswith="bench-real-"))
    ids = []
    for i in range(count):
        user = users[i % len(users)]
        ids.append(
            submission_create(
                submitter=access_submitter(user, phase),
                upload=SimpleUploadedFile(f"{STARTER}.csv", body, "text/csv"),
            ).pk
        )
    return ids


@contextmanager
def _timed(totals: dict[str, float], name: str):
    t = time.process_time()
    try:
        yield
    finally:
        totals[name] += time.process_time() - t


def _run(ids, sent: _Sent, counter: _Counter | None, totals=None):
    """Each submission's task, then whatever it sent, to the end of the chain."""
    from evalserver.celery import app

    totals = totals if totals is not None else defaultdict(float)
    for sid in ids:
        if counter is not None:
            counter.last = []
        queue = [("workers.evaluate_submission", [sid])]
        while queue:
            name, args = queue.pop(0)
            if counter is not None:
                counter.task = name
            with _timed(totals, name):
                app.tasks[name].run(*args)
            queue.extend(t for t in sent.take() if t[0] != "workers.evaluate_submission")
    return totals


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_worker")
    parser.add_argument("-n", type=int, default=200, help="submissions (default 200)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--sql", action="store_true", help="the last submission's statements")
    parser.add_argument("--profile-out", type=Path, help="keep the cProfile stats here")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="profile-worker-"))
    _environment(folder)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from challenges.models import Submission
    from evalserver.celery import app
    from workers import tasks  # noqa: F401  (registers the tasks, as a worker's start does)

    call_command("migrate", verbosity=0, interactive=False)
    call_command("flush", verbosity=0, interactive=False)
    sent = _Sent()
    app.send_task = sent
    ids = _arena(args.n + args.warm)
    sent.take()
    warm, rest = ids[: args.warm], ids[args.warm :]
    half = len(rest) // 2
    plain, profiled = rest[:half], rest[half:]

    _run(warm, sent, None)
    counter = _Counter()
    # Explicit transactions (psycopg sends BEGIN and COMMIT around each, neither seen by
    # execute_wrapper): counted where Django commits and rolls back.
    ends: dict[str, int] = defaultdict(int)
    real_commit, real_rollback = connection._commit, connection._rollback

    def commit():
        ends[counter.task] += 1
        return real_commit()

    def rollback():
        ends[counter.task] += 1
        return real_rollback()

    connection._commit, connection._rollback = commit, rollback
    with connection.execute_wrapper(counter):
        totals = _run(plain, sent, counter)
    connection._commit, connection._rollback = real_commit, real_rollback
    n = len(plain)
    print(f"submissions measured: {n} (after {len(warm)} to warm up), DB {connection.vendor}")
    print("CPU ms per submission in this process (the sandboxed child not counted):")
    for name, used in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:40s} {used * 1000 / n:7.2f}")
    print(f"  {'total':40s} {sum(totals.values()) * 1000 / n:7.2f}")
    print("SQL statements per submission:")
    for name, count in sorted(counter.by_task.items(), key=lambda kv: -kv[1]):
        print(f"  {name:40s} {count / n:7.2f}")
    print(f"  {'total':40s} {sum(counter.by_task.values()) / n:7.2f}")
    print("explicit transactions (BEGIN ... COMMIT, each two more round trips) per submission:")
    for name, count in sorted(ends.items(), key=lambda kv: -kv[1]):
        print(f"  {name:40s} {count / n:7.2f}")
    if args.sql:
        for task, sql in counter.last:
            print(f"  [{task.rsplit('.', 1)[-1]}] {sql[:300]}")

    # CPU time, as the figures above: waiting for the child or the database costs none.
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    _run(profiled, sent, None)
    profile.disable()
    if args.profile_out:
        profile.dump_stats(args.profile_out)
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top + 25)
    print(out.getvalue())
    states = Submission.objects.filter(pk__in=ids).values_list("status", flat=True)
    counts = defaultdict(int)
    for s in states:
        counts[s] += 1
    print("statuses:", dict(counts))
    evaluate = [
        e.get("evaluate_cpu_s", 0) * 1000
        for e in Submission.objects.filter(pk__in=plain).values_list("execution", flat=True)
    ]
    if evaluate:
        print(
            f"child evaluate() CPU ms (median, not counted above): {statistics.median(evaluate):.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

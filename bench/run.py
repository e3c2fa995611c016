"""`python -m bench [--quick]`: set the services up, measure, print, tear everything down."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.services import (
    BenchError,
    Folders,
    ThrowawayDatabase,
    Worker,
    bench_environment,
    broker_url,
    check_redis,
    database_server_url,
    forget_queue,
)

WORKER_CONCURRENCY = 2
PARTS = ("pipeline", "realistic", "upload", "transfers", "leaderboard", "code", "tournament")


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


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure evalserver against DESIGN.md section 8 on real PostgreSQL and Redis "
        "(DATABASE_URL, CELERY_BROKER_URL; default the local servers). Creates and drops its own "
        "database, queue and folders.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer submissions (about 20 s instead of about 90 s; noisier)",
    )
    parser.add_argument(
        "--only",
        metavar="PART",
        action="append",
        choices=PARTS,
        help=f"measure only this part (repeatable; one of {', '.join(PARTS)}); "
        "targets of the parts left out are not checked",
    )
    parser.add_argument(
        "--worker-log",
        metavar="PATH",
        type=Path,
        help="keep the worker's log here (it is removed with the run's folders otherwise)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # A plain `kill` tears down like Ctrl-C does: the database, queue and folders go too.
    signal.signal(signal.SIGTERM, _interrupt)
    sizes = Sizes.quick() if args.quick else Sizes.full()
    started = time.perf_counter()
    database: ThrowawayDatabase | None = None
    folders: Folders | None = None
    worker: Worker | None = None
    broker = queue = ""
    status = 1
    try:
        server = database_server_url()
        broker = broker_url()
        check_redis(broker)
        database = ThrowawayDatabase(server).create()
        folders = Folders()
        queue = f"evalserver-bench-{uuid.uuid4().hex[:8]}"
        os.environ.update(
            bench_environment(
                database_url=database.url, broker=broker, queue=queue, folders=folders
            )
        )
        worker = Worker(
            env=dict(os.environ),
            log_path=folders.logs / "worker.log",
            queue=queue,
            concurrency=WORKER_CONCURRENCY,
        )
        # --quick leaves out the transfers (a million-row starter build and 2 x 128 MiB,
        # about 40 s more): `--quick --only transfers` runs them.
        default = [p for p in PARTS if p != "transfers"] if args.quick else PARTS
        parts = set(args.only or default)
        status = _measure(sizes, worker, database, queue, quick=args.quick, parts=parts)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        _print_worker_log(worker)
    except Exception:
        traceback.print_exc()
        _print_worker_log(worker)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        status = 130
    finally:
        if args.worker_log and worker is not None:
            with contextlib.suppress(OSError):
                shutil.copyfile(worker.log_path, args.worker_log)
        _teardown(worker, database, folders, broker, queue)
    print(f"bench: run time {time.perf_counter() - started:.1f} s", flush=True)
    return status


def _measure(
    sizes: Sizes,
    worker: Worker,
    database: ThrowawayDatabase,
    queue: str,
    *,
    quick: bool,
    parts: set[str],
) -> int:
    import django

    django.setup()
    # This process plays the web process; its INFO lines (challenge created...) are noise here.
    logging.getLogger("challenges").setLevel(logging.WARNING)
    from django.core.management import call_command

    from evalserver.celery import app

    # The settings read these at setup already; say it again in case the app was configured.
    app.conf.broker_url = os.environ["CELERY_BROKER_URL"]
    app.conf.task_default_queue = queue

    from bench.report import Report, percentile

    report = Report()
    print(
        f"bench: {'quick' if quick else 'full'} run; database {database.name}, queue {queue}; "
        f"one `celery worker --concurrency={worker.concurrency}`; submissions through "
        "submission_create() (service layer) with a SimpleUploadedFile",
        flush=True,
    )
    print(f"bench: {_load()} at the start", flush=True)
    t = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    report.add("setup_migrate_s", time.perf_counter() - t, "s", "migrate a new database")
    t = time.perf_counter()
    worker.start()
    report.add("setup_worker_start_s", time.perf_counter() - t, "s", "until ` ready.`")

    from bench import figures
    from bench.scenario import (
        PANDAS_EVALUATE,
        SLEEPY_EVALUATE,
        TRIVIAL_EVALUATE,
        Arena,
        Cast,
        Poller,
        load_module,
    )

    cast = Cast.create()
    poller = Poller()

    trivial = None
    if "pipeline" in parts:
        # Trivial evaluate(): warm both pool processes, then the bare loop on the same files.
        trivial = Arena.load(cast, TRIVIAL_EVALUATE, title="Bench trivial").approve_and_enter(cast)
        warm = figures.burst(trivial, cast, poller, count=sizes.warmup, timeout=120)
        sample = trivial.phase.submissions.order_by("pk").first()
        files = (trivial.phase.test_annotation.path, sample.input_file.path)
        evaluate = load_module(TRIVIAL_EVALUATE, "bench_trivial").evaluate
        bare_s = figures.bare_loop(evaluate, *files, calls=sizes.bare_calls)
        report.add(
            "bare_evaluate_ms",
            bare_s * 1000,
            "ms",
            "trivial evaluate() in a plain loop",
            decimals=4,
        )
        report.add("bare_throughput_per_s", 1 / bare_s, "1/s", "same loop, calls per second", 0)
        report.add("warmup_burst_s", warm.total_s, "s", f"{sizes.warmup} first submissions")

        run = figures.sequential(trivial, cast, poller, count=sizes.sequential)
        overhead_ms = [(latency - bare_s) * 1000 for latency in run.latency_s]
        how = f"{sizes.sequential} sequential, accepted -> result row, minus bare; 2 ms polling"
        p50 = percentile(overhead_ms, 0.5)
        report.add("overhead_p50_ms", p50, "ms", how)
        report.add("overhead_p99_ms", percentile(overhead_ms, 0.99), "ms", how)
        report.add("overhead_max_ms", max(overhead_ms), "ms", "largest sample")
        report.add(
            "submit_p50_ms",
            figures.median_ms(run.submit_s),
            "ms",
            "submission_create() itself (not in overhead)",
        )
        breakdown = figures.breakdown(run)
        for name, text in (
            ("to_claim", "accepted -> worker starts its claim (broker, Celery hand-off, 1 query)"),
            ("prepare", "claim -> outcome write, minus sandbox (claim commit, lookups, staging)"),
            ("sandbox", "child wall time as the worker measured it (fork + evaluate)"),
            ("to_visible", "outcome write -> result row seen (4 queries, commit, polling)"),
        ):
            report.add(
                f"overhead_{name}_p50_ms", figures.median_ms(breakdown[name]), "ms", f"{text}"
            )

        tp = figures.burst(trivial, cast, poller, count=sizes.burst, timeout=sizes.burst * 0.5 + 60)
        report.add(
            "throughput_per_s",
            tp.throughput,
            "1/s",
            f"{sizes.burst} at once, 2 worker processes, first accepted -> last result row",
            1,
        )
        report.add("burst_submit_rate_per_s", tp.submit_rate, "1/s", "submission_create() rate", 1)
        drained = figures.drain(
            trivial,
            cast,
            poller,
            worker,
            count=sizes.burst,
            timeout=sizes.burst * 0.5 + 60,
            database=database.name,
        )
        report.add(
            "worker_drain_per_s",
            drained.rate,
            "1/s",
            f"{sizes.burst} queued while the worker does not consume, then drained",
            1,
        )
        report.add(
            "worker_cpu_per_submission_ms",
            drained.worker_cpu_s / drained.count * 1000,
            "ms",
            "during the drain: worker, pool, warm parents, children",
        )
        report.add(
            "postgres_cpu_per_submission_ms",
            drained.postgres_cpu_s / drained.count * 1000,
            "ms",
            "during the drain: backends of the bench database (poller too)",
        )

        # An evaluate() that sleeps 200 ms: the platform against 2 bare threads.
        sleepy = Arena.load(cast, SLEEPY_EVALUATE, title="Bench 200 ms").approve_and_enter(cast)
        figures.burst(sleepy, cast, poller, count=sizes.sleepy_warmup, timeout=120)
        slow = figures.burst(
            sleepy, cast, poller, count=sizes.sleepy_burst, timeout=sizes.sleepy_burst * 0.5 + 60
        )
        sleepy_evaluate = load_module(SLEEPY_EVALUATE, "bench_sleepy").evaluate
        bare_rate = figures.bare_parallel(
            sleepy_evaluate, *files, calls=sizes.sleepy_burst, threads=WORKER_CONCURRENCY
        )
        report.add(
            "throughput_200ms_per_s",
            slow.throughput,
            "1/s",
            f"{sizes.sleepy_burst} at once, evaluate() sleeps 200 ms, 2 worker processes",
        )
        report.add(
            "bare_throughput_200ms_per_s",
            bare_rate,
            "1/s",
            f"{sizes.sleepy_burst} calls shared by 2 threads in one process",
        )
        timeline = figures.pool_timeline(slow.ids)
        report.add(
            "burst_200ms_busy_p50_ms",
            figures.median_ms(timeline["busy"]),
            "ms",
            "per submission: claim -> outcome write, minus the sandbox",
        )
        report.add(
            "burst_200ms_gap_p50_ms",
            figures.median_ms(timeline["gap"]),
            "ms",
            "outcome write -> same pool process's next claim",
        )
        report.add(
            "throughput_200ms_ratio",
            slow.throughput / bare_rate,
            "x",
            "platform / bare",
            decimals=3,
        )

        # A challenge the worker has never seen.
        fresh = Arena.load(cast, TRIVIAL_EVALUATE + "\n# fresh\n", title="Bench approval")
        first = figures.approve_to_first_finished(fresh, cast, poller)
        report.add(
            "approve_to_first_finished_s",
            first.total_s,
            "s",
            "start of challenge_approve() -> first result row, worker running",
            3,
        )
        report.add("approve_enter_s", first.approve_s, "s", "approve + team enters", 3)
        fresh = Arena.load(cast, PANDAS_EVALUATE, title="Bench approval, pandas")
        first = figures.approve_to_first_finished(fresh, cast, poller)
        report.add(
            "approve_to_first_finished_pandas_s",
            first.total_s,
            "s",
            "the same with a script that imports pandas",
            3,
        )

    elif "tournament" in parts:
        trivial = Arena.load(cast, TRIVIAL_EVALUATE, title="Bench trivial").approve_and_enter(cast)
        figures.burst(trivial, cast, poller, count=sizes.warmup, timeout=120)

    if "realistic" in parts:
        _measure_realistic(report, cast, sizes, worker, database.name)
    if "upload" in parts:
        _measure_upload(report, cast, sizes, worker.log_path.parent)
    if "transfers" in parts:
        _measure_transfers(report, cast, sizes, worker.log_path.parent)
    if "leaderboard" in parts:
        _measure_leaderboard(sizes, cast, report)

    if "code" in parts:
        # Code submissions: the model sandbox against the same work done in-process.
        from bench.code_sandbox import ROWS, sandbox_overhead

        code = sandbox_overhead(runs=sizes.code_runs)
        report.add(
            "sandbox_overhead_ms",
            code["overhead_ms"],
            "ms",
            f"model in the sandbox minus in-process (median of {sizes.code_runs}, {ROWS} rows, warm)",
        )
        report.add(
            "code_bare_ms", code["bare_ms"], "ms", "read, unpickle, predict, check in-process"
        )
        report.add(
            "code_sandbox_ms", code["sandbox_ms"], "ms", "the same through workers.code_runner"
        )

    if "tournament" in parts:
        from bench.tournament import measure_tournament_round

        measure_tournament_round(report, cast, ordinary=trivial, poller=poller, quick=quick)

    print(f"bench: {_load()} at the end", flush=True)
    print("\n" + report.table(), flush=True)
    missed = report.missed()
    print(
        "bench: targets missed: " + ", ".join(missed) if missed else "bench: every target met",
        flush=True,
    )
    return 0


def _measure_realistic(report, cast, sizes: Sizes, worker: Worker, database: str) -> None:
    from bench.realistic import measure_realistic
    from bench.report import percentile

    real = measure_realistic(
        cast,
        burst=sizes.realistic_burst,
        bare_calls=sizes.realistic_bare_calls,
        per_submitter=sizes.e2e_rounds,
        logs=worker.log_path.parent,
        worker_pid=worker.proc.pid,
        database=database,
    )
    what = "tabular starter's evaluate() (pandas + sklearn), 400-row sample"
    report.add(
        "realistic_per_s",
        real.platform_per_s,
        "1/s",
        f"{sizes.realistic_burst} REST uploads, 2 worker processes: {what}",
        1,
    )
    report.add(
        "realistic_bare_per_s", real.bare_per_s, "1/s", "two plain loops of it side by side", 1
    )
    report.add("realistic_ratio", real.ratio, "x", "platform / two bare loops", 3)
    child = percentile(real.child_cpu_ms, 0.5)
    report.add("realistic_child_cpu_ms", child, "ms", "p50 CPU of the sandboxed child")
    report.add("realistic_bare_cpu_ms", real.bare_cpu_ms, "ms", "CPU of one call in the loop")
    report.add(
        "realistic_child_cpu_ratio", child / real.bare_cpu_ms, "x", "child p50 / bare call", 2
    )
    report.add(
        "realistic_fork_per_s",
        real.fork_per_s,
        "1/s",
        "two loops side by side forking a child per call (no sandbox, no platform)",
        1,
    )
    report.add(
        "realistic_fork_ceiling",
        real.fork_ratio,
        "x",
        "fork loops / bare loops: the most realistic_ratio can be with a process per submission",
        3,
    )
    report.add(
        "realistic_ratio_of_ceiling",
        real.platform_per_s / real.fork_per_s,
        "x",
        "platform / fork loops: what the platform keeps of that ceiling",
        3,
    )
    report.add(
        "realistic_fork_child_cpu_ratio",
        real.fork_cpu_ms / real.bare_cpu_ms,
        "x",
        "a plain forked child's CPU, fork to the end of its call (as recorded for ours) / bare",
        2,
    )
    report.add(
        "realistic_child_wall_ms",
        percentile(real.child_wall_ms, 0.5),
        "ms",
        "p50 wall time of the sandboxed child",
    )
    for part, what in (
        ("web", "gunicorn: REST uploads, quota checks, storing"),
        ("worker_main", "celery worker's main process: broker, hand-off to the pool"),
        ("worker_pool", "pool processes: Django, claims, staging, outcome, leaderboard"),
        ("warm_parents", "warm parents: forking a child per submission"),
        ("children", "sandboxed children: confinement and evaluate()"),
        ("postgres", "PostgreSQL backends of the bench database"),
        ("redis", "Redis"),
        ("bench", "this process: 4 upload clients and the poller"),
    ):
        report.add(f"realistic_cpu_{part}_ms", real.cpu_ms[part], "ms", f"per submission: {what}")
    how = f"8 submitters x {sizes.e2e_rounds}, REST upload -> leaderboard row visible"
    report.add("e2e_p50_ms", percentile(real.e2e_ms, 0.5), "ms", how)
    report.add("e2e_p99_ms", percentile(real.e2e_ms, 0.99), "ms", how)


def _measure_upload(report, cast, sizes: Sizes, logs: Path) -> None:
    from bench.upload import disk_has_room, measure_upload

    size = sizes.upload_bytes
    if not disk_has_room(logs, size):
        print(f"bench: not enough free disk for a {size >> 20} MiB upload; skipped", flush=True)
        return
    upload = measure_upload(cast, size_bytes=size, log_path=logs / "gunicorn.log")
    how = f"{size >> 20} MiB through gunicorn + REST API: web worker's peak RSS - RSS before"
    if not upload.peak_reset:
        how += " (peak not resettable: counts from the worker's start)"
    report.add("upload_rss_growth_mib", upload.growth_mib, "MiB", how, 1)
    report.add("upload_mib_per_s", upload.mib_per_s, "MiB/s", "same upload, until 201", 1)


def _measure_transfers(report, cast, sizes: Sizes, logs: Path) -> None:
    """Resumable upload and Range download through gunicorn, and the out-of-core
    evaluation's memory (bench/transfers.py, bench/ooc.py)."""
    from bench.ooc import measure_ooc
    from bench.transfers import measure_transfers
    from bench.upload import disk_has_room

    size = sizes.upload_bytes
    if disk_has_room(logs, 2 * size):
        moved = measure_transfers(cast, size_bytes=size, log_path=logs / "gunicorn.log")
        how = (
            f"{size >> 20} MiB by tus PATCHes of 256 MiB, dropped once at half and resumed, "
            "then finished: web worker's peak RSS - RSS before"
        )
        if not moved.peak_reset:
            how += " (peak not resettable: counts from the worker's start)"
        report.add("upload_resumable_1gib_rss_mib", moved.upload_growth_mib, "MiB", how, 1)
        report.add(
            "upload_resumable_s",
            moved.upload_s,
            "s",
            f"same, create to finished (dropped at byte {moved.dropped_at}, resumed at "
            f"{moved.resumed_at})",
        )
        scaled = "" if size == 1024**3 else f" (scaled from {size >> 20} MiB)"
        report.add(
            "download_1gib_s",
            moved.download_1gib_s,
            "s",
            f"GET /api/v1/submissions/<id>/file/ through gunicorn{scaled}",
        )
        report.add(
            "download_rss_mib",
            moved.download_growth_mib,
            "MiB",
            "web worker's peak RSS growth during that download",
            1,
        )
        report.add(
            "download_resume_ok",
            1.0 if moved.resumed_download_ok else 0.0,
            "bool",
            "Range from half with If-Range: 206 and the right sha256",
            0,
        )
    else:
        print(f"bench: not enough free disk for {size >> 20} MiB transfers; skipped", flush=True)
    with tempfile.TemporaryDirectory(dir=logs) as tmp:
        ooc = measure_ooc(Path(tmp))
    report.add(
        "ooc_eval_peak_mib",
        ooc.eval_peak_mib,
        "MiB",
        f"numerai_parquet evaluate() on {ooc.rows} rows: child's peak RSS growth",
        1,
    )
    report.add(
        "ooc_file_in_memory_mib",
        ooc.file_in_memory_mib,
        "MiB",
        f"the same predictions as one DataFrame (deep); read_parquet grew RSS "
        f"{ooc.load_peak_mib:.0f} MiB; {ooc.file_mib:.1f} MiB on disk",
        1,
    )
    report.add(
        "ooc_peak_over_file",
        ooc.eval_peak_mib / ooc.file_in_memory_mib,
        "x",
        "evaluate()'s peak over the file loaded whole",
        2,
    )
    report.add("ooc_eval_s", ooc.eval_s, "s", "that evaluate() call", 2)


def _measure_leaderboard(sizes: Sizes, cast, report) -> None:
    """The leaderboard API at `board_submissions` finished submissions from `board_teams`
    teams (DESIGN.md section 8: 100,000 and 2,000)."""
    from bench import leaderboard
    from bench.figures import median_ms
    from bench.report import percentile

    board = leaderboard.populate(cast, teams=sizes.board_teams, submissions=sizes.board_submissions)
    scale = f"{sizes.board_submissions:,} finished submissions, {sizes.board_teams:,} teams"
    report.add("leaderboard_setup_s", board.setup_s, "s", f"bulk insert: {scale}")
    report.add(
        "leaderboard_rebuild_s",
        board.rebuild_s,
        "s",
        f"leaderboard_rebuild(): {board.entries:,} entries from every result",
    )
    how = f"GET leaderboard/ (first page of 100), anonymous, test client; {scale}"
    times = [t * 1000 for t in leaderboard.read_times(board.url, samples=sizes.board_reads)]
    report.add("leaderboard_p50_ms", percentile(times, 0.5), "ms", how)
    report.add("leaderboard_p99_ms", percentile(times, 0.99), "ms", how)
    full = [
        t * 1000
        for t in leaderboard.read_times(
            board.url, samples=max(sizes.board_reads // 5, 20), limit=5000, order_by="Loss"
        )
    ]
    report.add(
        "leaderboard_all_rows_p99_ms",
        percentile(full, 0.99),
        "ms",
        "the same, every team in one page (?limit=5000), ordered by another label",
    )
    per_team = sizes.board_submissions // sizes.board_teams
    report.add(
        "leaderboard_merge_result_p50_ms",
        median_ms(leaderboard.merge_times(board, samples=50)),
        "ms",
        f"merge one new result into its team's entries (~{per_team} results), in record_outcome",
    )
    report.add(
        "leaderboard_refresh_team_p50_ms",
        median_ms(leaderboard.refresh_times(board, samples=50)),
        "ms",
        f"recompute one team's entries from its ~{per_team} results (toggles, bans)",
    )


def _print_worker_log(worker: Worker | None) -> None:
    if worker is not None and worker.proc is not None:
        print(f"bench: worker log (tail):\n{worker.log_tail()}", file=sys.stderr)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _load() -> str:
    """Other processes on the machine skew every figure: say how busy it was."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def _teardown(
    worker: Worker | None,
    database: ThrowawayDatabase | None,
    folders: Folders | None,
    broker: str,
    queue: str,
) -> None:
    """Everything this run made goes, even after an error; a failure here is only reported."""
    steps = []
    if worker is not None:
        steps.append(("stop the worker", worker.stop))
    steps.append(("close connections", _close_connections))
    if database is not None:
        steps.append((f"drop database {database.name}", database.drop))
    if queue:
        steps.append((f"forget queue {queue}", lambda: forget_queue(broker, queue)))
    if folders is not None:
        steps.append((f"remove {folders.root}", folders.remove))
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # keep tearing down
            print(f"bench: could not {what}: {exc}", file=sys.stderr)


def _close_connections() -> None:
    if "django" not in sys.modules:
        return
    from django.db import connections

    with contextlib.suppress(Exception):
        connections.close_all()

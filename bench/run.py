"""`python -m bench [--quick]`: set the services up, measure, print, tear everything down."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
import traceback
import uuid
from pathlib import Path

from bench import measures
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
from bench.sizes import Sizes

WORKER_CONCURRENCY = 2
PARTS = (
    "pipeline",
    "realistic",
    "upload",
    "transfers",
    "leaderboard",
    "code",
    "tournament",
    "diagnostics",
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
        # about 40 s more) and the diagnostics (a 500 MiB validation set): `--quick --only
        # transfers` runs them.
        heavy = ("transfers", "diagnostics")
        default = [p for p in PARTS if p not in heavy] if args.quick else PARTS
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
        measures.measure_realistic(report, cast, sizes, worker, database.name)
    if "upload" in parts:
        measures.measure_upload(report, cast, sizes, worker.log_path.parent)
    if "transfers" in parts:
        measures.measure_transfers(report, cast, sizes, worker.log_path.parent)
    if "leaderboard" in parts:
        measures.measure_leaderboard(sizes, cast, report)

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

    if "diagnostics" in parts:
        from bench.diagnostics import measure_diagnostics

        measure_diagnostics(report, worker.log_path.parent / "diagnostics")

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

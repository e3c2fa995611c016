"""The parts of a bench run measured beside the pipeline (bench.run._measure runs the
pipeline itself): a realistic challenge, uploads, transfers and leaderboard refreshes.
Each adds its figures to the run's report."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.services import Worker
from bench.sizes import Sizes


def measure_realistic(report, cast, sizes: Sizes, worker: Worker, database: str) -> None:
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
        "realistic_fork_child_cpu_ms",
        real.fork_cpu_ms,
        "ms",
        "a plain forked child's CPU, fork to the end of its call (no sandbox)",
    )
    report.add(
        "realistic_child_over_fork_child",
        child / real.fork_cpu_ms,
        "x",
        "sandboxed child p50 / plain forked child: what confinement adds",
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
        ("postgres", "PostgreSQL backends of the bench database but the poller's"),
        ("redis", "Redis"),
        ("bench", "this process: 4 upload clients, the poller and its PostgreSQL backend"),
    ):
        report.add(f"realistic_cpu_{part}_ms", real.cpu_ms[part], "ms", f"per submission: {what}")
    platform = real.platform_cpu_ms
    report.add(
        "realistic_cpu_children_outside_evaluate_ms",
        platform["children_outside_evaluate"],
        "ms",
        "per submission: the children's CPU outside their evaluate() call (fork, confinement)",
    )
    report.add(
        "realistic_platform_cpu_ms",
        sum(platform.values()),
        "ms",
        "per submission, all but evaluate() and the clients: "
        + " + ".join(f"{name} {value:.1f}" for name, value in platform.items()),
    )
    how = f"8 submitters x {sizes.e2e_rounds}, REST upload -> leaderboard row visible"
    report.add("e2e_p50_ms", percentile(real.e2e_ms, 0.5), "ms", how)
    report.add("e2e_p99_ms", percentile(real.e2e_ms, 0.99), "ms", how)


def measure_upload(report, cast, sizes: Sizes, logs: Path) -> None:
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


def measure_transfers(report, cast, sizes: Sizes, logs: Path) -> None:
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


def measure_leaderboard(sizes: Sizes, cast, report) -> None:
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

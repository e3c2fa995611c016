"""Benchmarks of DESIGN.md section 8: `python -m bench` (or `make bench`).

Real parts only: a throwaway PostgreSQL database (created, migrated, dropped), its own
Redis queue, its own storage folders, and one `celery -A evalserver worker
--concurrency=2` process (two pool processes) started the way production starts it.
Submissions go in through the service layer (`submission_create` with a
`SimpleUploadedFile`, the same call the REST API view makes), from this process, which
plays the web process and shares the machine's two cores with the worker.

Each figure is printed as one line `BENCH <name> <value> <unit>`, then all of them in a
table with their target and PASS/MISS. Missing a target is not an error; the exit
status is non-zero only when the benchmark itself could not run (a service is missing,
a submission failed, something timed out).

The figures:

bare_evaluate_ms, bare_throughput_per_s
    The trivial evaluate() (reads the annotation and the submission, returns one score)
    called in a plain loop in this process, on the same stored files the worker reads:
    mean time per call, and calls per second.
overhead_p50_ms, overhead_p99_ms
    Per submission, one in flight at a time, after a warm-up: time from
    submission_create() returning (upload accepted and enqueued) until its
    SubmissionResult row is visible to another connection, minus bare_evaluate_ms.
    The database is polled every 2 ms, so each sample is late by up to ~2 ms plus one
    query (about +1 ms on average).
throughput_per_s
    Trivial evaluate(), 2 worker processes: a burst of submissions created as fast as
    one thread can; submissions per second from the first accepted to the moment the
    last one's result row is seen (polled every 5 ms).
throughput_200ms_per_s, bare_throughput_200ms_per_s, throughput_200ms_ratio
    The same burst with an evaluate() that sleeps 200 ms, against a bare baseline of 2
    threads in this process calling that evaluate() on the same files, the same number
    of times in total (the ideal is 10 calls/s). The ratio is platform / bare.
approve_to_first_finished_s
    With the worker already running and warm for other challenges: a freshly loaded
    challenge is approved, a team enters it and submits; seconds from the start of
    challenge_approve() until that submission's result row is visible.
sandbox_overhead_ms
    Code submissions: a cloudpickled scikit-learn model on 1,800 rows of 20 features,
    run through workers.code_runner (the worker's call: warm parent, forked child in its
    namespaces as the model uid, predictions checked again in the parent) minus the same
    read, unpickle, predict and check done in this process (code_bare_ms). Medians after
    warm-up runs; no database.

leaderboard_p50_ms, leaderboard_p99_ms
    The leaderboard API (the first page of 100 rows, anonymous reader, through URL
    routing, middleware and the DRF view with Django's test client) over 100,000
    finished submissions from 2,000 teams (--quick: 20,000 from 400), bulk-inserted as
    rows and turned into entries once by leaderboard_rebuild(). Informational:
    every team in one page, the rebuild, and what keeping entries current costs per
    recorded result (merge) and per toggle (recompute one team).
realistic_ratio, realistic_child_cpu_ms, realistic_child_cpu_ratio, e2e_p50_ms
    The tabular starter's own evaluate() (pandas + scikit-learn, 400-row sample) through
    the whole stack: REST uploads to gunicorn, the two-process worker, until the
    leaderboard row is visible (bench/realistic.py). The ratio is the platform's finished
    submissions per second over two plain loops of the same evaluate() run side by side
    in the same run; the child's CPU is compared with one call's CPU in that loop.
    e2e_p50_ms: 8 submitters, each waiting for its own row before the next upload.
realistic_fork_ceiling, realistic_ratio_of_ceiling, realistic_fork_child_cpu_ratio
    The same two loops, but forking a child per call that calls evaluate() once and
    exits (no sandbox, no upload, no database): the most any design that gives each
    submission a fresh process can reach on this machine. A forked child's first call
    pays for copying every page it writes (about 3,000 here, 3-4 us each) and for cold
    caches. realistic_ratio_of_ceiling is what the platform keeps of that ceiling
    (target >= 0.8).
realistic_platform_cpu_ms, realistic_child_over_fork_child
    The platform's CPU per submission of the burst outside the children's evaluate()
    calls (target <= 35 ms), printed with its parts: the web, the worker's main and pool
    processes, the warm parents, PostgreSQL, Redis, and the children's CPU outside their
    call (fork, confinement; each child reports its call's own CPU as evaluate_cpu_s).
    The clients' CPU is the bench's, not the platform's. realistic_child_over_fork_child
    is the sandboxed child's p50 CPU over a plain forked child's (target <= 1.15): what
    the confinement costs beyond the fork itself.
realistic_cpu_*_ms
    CPU per submission of the realistic burst by part of the stack (web, worker main
    process, pool processes, warm parents, children, PostgreSQL, Redis, the bench).
diagnostics_s, diagnostics_peak_mib, diagnostics_peak_over_features
    Model diagnostics (bench/diagnostics.py): 1,000,000 validation rows, 200 eras, 500
    int8 features and example predictions, generated at build time (diagnostics_build_s);
    the wall time of `python -m workers.diagnostics` on them (target <= 60 s), its own
    peak RSS (VmHWM), and that peak over the features loaded whole (<= 0.25). Left out of
    --quick (`--only diagnostics` runs it).

Informational figures (no target) say where the time goes: the overhead split by the
worker's own timestamps (overhead_*_p50_ms), the worker alone draining a backlog
(worker_drain_per_s, with the CPU the worker's process tree and the bench database's
PostgreSQL backends spent per submission), how a 200 ms burst kept each pool process
busy (burst_200ms_*), and the same approval with a script that imports pandas. The run
prints the machine's load average at its start and end: other processes on a 2-core
machine move every figure.

`--quick` runs fewer submissions (about 20 s instead of about a minute and a half);
`--worker-log PATH` keeps the worker's log.
"""

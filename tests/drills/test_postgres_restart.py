"""Drill: PostgreSQL stopped and started again during a burst of submissions.

Not only connections cut (tests/workers/test_faults.py does that): the server itself goes
away with `pg_ctl stop -m fast`, nothing answers for some seconds, and it comes back. The
drill runs a cluster of its own, so the machine's shared PostgreSQL is never touched, with
gunicorn, a Celery worker and beat (the sweeper) as production runs them, on a Redis of
its own. The invariant (DESIGN.md sections 2, 5 and 9): every submission ends final, none
is evaluated twice, none is lost.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.drills.installation import drill_bundle, drill_env, machine_folders, site_prepare
from tests.drills.processes import (
    Beat,
    Gunicorn,
    PostgresCluster,
    http,
    manage,
    query,
    start_together,
)
from tests.services import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.services]

BURST = 40
DOWN_FOR_S = 4
FINAL = ("finished", "failed", "cancelled")


def test_postgresql_stopped_and_started_mid_burst_loses_no_submission_and_runs_none_twice(
    cluster, redis_server, tmp_path
):
    url = cluster.createdb("drill")
    with contextlib.ExitStack() as stack:
        _root, folders = stack.enter_context(machine_folders("pg-restart"))
        env = drill_env(
            database_url=url,
            broker_url=redis_server.url,
            folders=folders,
            # Sweep every second; re-send what waited 5 s (production: 30 s and 300 s).
            SWEEPER_INTERVAL_S="1",
            SWEEPER_REQUEUE_AFTER_S="5",
            THROTTLE_SUBMIT_USER="10000/minute",
        )
        manage(env, "migrate", "--noinput", "-v0")
        web = Gunicorn(env, tmp_path / "gunicorn.log")
        worker = WorkerProcess(
            env=env, log_path=tmp_path / "worker.log", node=f"drill-{uuid.uuid4().hex[:6]}@%h"
        )
        stack.callback(web.stop)
        stack.callback(worker.stop)
        start_together(web, worker)
        stack.callback(Beat(env, tmp_path).start().stop)
        site = site_prepare(env, web.url, drill_bundle(), tmp_path)
        outcome = _burst_with_a_restart(cluster, url, web, site)
        rows = _wait_all_final(url, site.challenge_id, worker, timeout=90)

    accepted = outcome["accepted"]
    print(
        f"\ndrill figures: burst {BURST}, accepted {len(accepted)}, refused while down "
        f"{outcome['refused']}, in flight when stopped {outcome['in_flight']}, "
        f"down for {outcome['down_s']:.1f} s"
    )
    # The stop came mid-burst: work was in flight, and some requests met the outage.
    assert outcome["in_flight"] > 0, outcome
    # A request the server could not serve while the database was away is answered 503
    # (try again), never a 500 or a dropped connection.
    assert set(outcome["refusal_statuses"]) <= {503}, outcome["refusal_statuses"]

    by_id = {row[0]: row for row in rows}
    lost = [sid for sid in accepted if sid not in by_id or by_id[sid][1] not in FINAL]
    not_finished = [(row[0], row[1], row[5]) for row in rows if row[1] != "finished"]
    # Every row of the challenge, accepted or not answered: nothing half made remains.
    twice = []
    for sid, _status, attempt, lost_count, stdout, _failure, _sent in rows:
        results = query(
            url,
            "SELECT DISTINCT attempt FROM challenges_submissionresult WHERE submission_id = %s",
            (sid,),
        )
        runs = stdout.count("evaluating ")
        if runs != 1 or [r[0] for r in results] != [attempt] or lost_count:
            twice.append((sid, attempt, lost_count, runs, results))
    print(
        f"drill figures: rows {len(rows)}, lost {len(lost)}, twice {len(twice)}, "
        f"not finished {len(not_finished)}, sent again by the sweeper {sum(r[6] > 1 for r in rows)}"
    )
    assert lost == []
    assert not_finished == []
    assert twice == []
    # Every row is one its client was told was accepted: none was answered 503 after its
    # commit (the client would send it again, and its file would go).
    assert sorted(by_id) == sorted(accepted)
    # The result rows are exactly one per split of each submission.
    (results,) = query(
        url,
        "SELECT count(*) FROM challenges_submissionresult r JOIN challenges_submission s "
        "ON s.id = r.submission_id JOIN challenges_challengephase p ON p.id = s.phase_id "
        "WHERE p.challenge_id = %s",
        (site.challenge_id,),
    )
    assert results[0] == 2 * len(rows)


def _burst_with_a_restart(cluster: PostgresCluster, url: str, web: Gunicorn, site) -> dict:
    """Submit BURST files from four clients; stop PostgreSQL once a third are accepted,
    start it again DOWN_FOR_S seconds later. What each request was answered, and how many
    submissions were not final yet at the stop."""
    lock = threading.Lock()
    accepted: list[int] = []
    refusals: list[int] = []
    stopped = threading.Event()
    state: dict = {}

    def submit(n: int) -> None:
        endpoint = f"{web.url}/api/v1/challenges/{site.challenge_id}/phases/probe/submissions/"
        for _ in range(60):
            status, _h, body = http(
                "POST",
                endpoint,
                token=site.tokens["participant"],
                files={"file": ("n.txt", str(n).encode())},
            )
            with lock:
                if status == 201:
                    accepted.append(json.loads(body)["id"])
                    return
                refusals.append(status)
            time.sleep(0.5)  # a client retrying after 503, as the answer asks
        raise AssertionError(f"submission {n} never accepted: {refusals[-5:]}")

    def restart() -> None:
        while len(accepted) < BURST // 3:
            time.sleep(0.01)
        (count,) = query(
            url,
            "SELECT count(*) FROM challenges_submission WHERE status NOT IN ('finished', 'failed', 'cancelled')",
        )
        state["in_flight"] = count[0]
        started = time.monotonic()
        cluster.stop("fast")
        stopped.set()
        time.sleep(DOWN_FOR_S)
        cluster.start()
        state["down_s"] = time.monotonic() - started

    restarter = threading.Thread(target=restart)
    restarter.start()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(submit, range(BURST)))
    restarter.join(timeout=120)
    return {
        "accepted": accepted,
        "refused": len(refusals),
        "refusal_statuses": sorted(set(refusals)),
        **state,
    }


def _wait_all_final(url: str, challenge_id: int, worker, timeout: float) -> list[tuple]:
    deadline = time.monotonic() + timeout
    sql = (
        "SELECT s.id, s.status, s.attempt, s.lost_count, s.stdout, s.failure_message, s.enqueue_count "
        "FROM challenges_submission s JOIN challenges_challengephase p ON p.id = s.phase_id "
        "WHERE p.challenge_id = %s ORDER BY s.id"
    )
    while True:
        try:
            rows = query(url, sql, (challenge_id,))
        except Exception:  # noqa: BLE001 - still starting
            rows = []
        if rows and all(r[1] in FINAL for r in rows):
            return rows
        assert time.monotonic() < deadline, (
            [r[:4] for r in rows if r[1] not in FINAL],
            worker.log_tail(6000),
        )
        time.sleep(0.5)

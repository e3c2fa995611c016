"""Fault tolerance with real parts: a worker killed mid-evaluation, a Redis restart during a
burst, and the sweeper for what a dead worker or a lost message left behind.

Each test gets its own `redis-server` on a spare port of 127.0.0.1 and its own `celery
worker` processes, so it can kill them without touching the session's shared Redis. The
database is the session's PostgreSQL test database. The invariant under test (DESIGN.md
sections 2, 5 and 9): every submission ends in a final state, none is evaluated twice,
none is lost.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from challenges.models import Challenge, Submission, SubmissionResult
from challenges.services.submissions import (
    EvaluationRecord,
    SweepReport,
    submission_claim,
    submission_record_outcome,
    submissions_sweep,
)
from challenges.services.submissions.transitions import EVALUATE_TASK
from tests.conftest import require_service
from tests.services import (
    ProcInfo,
    RedisProcess,
    WorkerProcess,
    new_queue,
    process_tree,
    publishing_to,
    still_running,
    worker_env,
    worker_machine,
)
from tests.workers.pipeline_helpers import (
    load_approved,
    participate,
    script_bundle,
    submit,
    wait_final,
)

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db(transaction=True)]

Status = Submission.Status
SANDBOX_UID = int(os.environ.get("EVALUATION_SANDBOX_UID", "65534"))

# Sleeps as long as the submission file says, and says which attempt it is on stdout and
# in its scores, so a test can tell an attempt that finished from one that was killed.
PAUSING_EVALUATE = """
import time

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    meta = kwargs["submission_metadata"]
    pause = float(open(user_submission_file).read().strip() or 0)
    print(f"evaluating {meta['id']} attempt {meta['attempt']}", flush=True)
    time.sleep(pause)
    print(f"evaluated {meta['id']} attempt {meta['attempt']}", flush=True)
    scores = {"Score": pause, "Other": meta["attempt"]}
    return {"result": [{"main": scores}, {"hidden": scores}]}
"""


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fault_env(tmp_path_factory, django_db_setup):
    """What the workers of this module share with the test process (not the broker)."""
    require_service("redis-server (the Redis binary)", shutil.which("redis-server") is not None)
    with worker_machine(tmp_path_factory.mktemp("faults"), name="faults") as env:
        yield env


@dataclass
class Rig:
    """This test's Redis, queue and workers; the test process publishes to the same."""

    env: dict
    redis: RedisProcess
    queue: str
    logs: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, node: str, concurrency: int = 2, **env: str) -> WorkerProcess:
        """Start a worker and wait until it is ready (after its start-up recovery ran)."""
        started = WorkerProcess(
            env=worker_env(
                **self.env,
                broker_url=self.redis.url,
                queue=self.queue,
                EVALUATION_TIME_LIMIT_S="60",
                **env,
            ),
            # One log per start: readiness is read from the log.
            log_path=self.logs / f"worker-{len(self.workers)}.log",
            node=node,
            concurrency=concurrency,
        ).start()
        self.workers.append(started)
        return started

    def queued_messages(self) -> int:
        """Evaluation messages waiting in the queue (the hosts' notification of the
        challenge's approval goes to the same broker and is not counted)."""
        client = self.redis.client()
        # kombu keeps a queue as a Redis list named after it (plus one per priority step).
        return sum(
            json.loads(raw).get("headers", {}).get("task") == EVALUATE_TASK
            for key in client.keys(f"{self.queue}*")
            for raw in client.lrange(key, 0, -1)
        )


@pytest.fixture
def rig(fault_env, transactional_db, settings, tmp_path):
    settings.MEDIA_ROOT = fault_env["media_root"]
    redis = RedisProcess(workdir=tmp_path / "redis").start()
    queue = new_queue()
    logs = tmp_path / "logs"
    logs.mkdir()
    setup = Rig(env=fault_env, redis=redis, queue=queue, logs=logs)
    try:
        with publishing_to(redis.url, queue):
            yield setup
    finally:
        for worker in setup.workers:
            worker.stop()
        redis.kill()


@pytest.fixture
def pausing(rig, users, host_teams) -> Challenge:
    challenge = load_approved(
        script_bundle(PAUSING_EVALUATE, title="Pausing", resources={"time_limit_s": 30}),
        users,
        host_teams["alice"],
    )
    participate(users["charlie"], challenge)
    return challenge


def node_name() -> str:
    return f"faults-{uuid.uuid4().hex[:6]}@%h"


def submit_pause(api, challenge: Challenge, seconds: float) -> int:
    response = submit(api("charlie"), challenge, "probe", str(seconds), name="pause.txt")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def wait_for_evaluation(
    submission_id: int, worker: WorkerProcess, *, attempt: int, timeout: float = 30
) -> list[ProcInfo]:
    """Wait until `attempt` runs inside the sandbox; return the worker's process tree then."""
    deadline = time.monotonic() + timeout
    while True:
        submission = Submission.objects.get(pk=submission_id)
        assert not submission.is_final_state, (submission.status, submission.failure_message)
        tree = process_tree(worker.proc.pid)
        if submission.status == Status.RUNNING and submission.attempt == attempt:
            if os.geteuid() == 0:
                # The sandbox drops to its own uid just before it calls evaluate().
                if any(p.uid == SANDBOX_UID for p in tree):
                    return tree
            elif len(tree) > worker.concurrency:  # something beyond the pool processes
                time.sleep(0.5)
                return process_tree(worker.proc.pid)
        assert time.monotonic() < deadline, (
            f"attempt {attempt} of submission {submission_id} not evaluating after {timeout} s "
            f"(status {submission.status}, attempt {submission.attempt}):\n{worker.log()[-3000:]}"
        )
        time.sleep(0.05)


def assert_all_gone(processes: list[ProcInfo], timeout: float = 5) -> None:
    """Nothing the killed worker started may live on (and finish an evaluation late)."""
    deadline = time.monotonic() + timeout
    while still_running(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert still_running(processes) == []


def results_of(submission: Submission) -> list[tuple[str, int, bool]]:
    return sorted(
        (r.phase_split.dataset_split.codename, r.attempt, r.is_active)
        for r in SubmissionResult.objects.filter(submission=submission).select_related(
            "phase_split__dataset_split"
        )
    )


# ---------------------------------------------------------------- kill -9 of a worker


def test_a_worker_killed_mid_evaluation_is_rerun_once_by_its_successor_and_finishes(
    rig, pausing, api
):
    node = node_name()
    worker = rig.worker(node)
    sid = submit_pause(api, pausing, 3)
    tree = wait_for_evaluation(sid, worker, attempt=1)

    worker.kill()  # SIGKILL to the worker's whole process group
    # The warm parent and the evaluation run in sessions of their own (not in that group):
    # they must die with the pool process, not finish attempt 1 behind everyone's back.
    assert_all_gone(tree)
    assert Submission.objects.get(pk=sid).status == Status.RUNNING  # nobody has noticed yet

    successor = rig.worker(node)  # same node name: its start-up recovery takes the submission
    assert "recovered after restart" in successor.log()
    (submission,) = wait_final([sid], timeout=30)
    assert submission.status == Status.FINISHED, (
        submission.failure_kind,
        submission.failure_message,
    )
    assert (submission.attempt, submission.lost_count, submission.enqueue_count) == (2, 1, 2)
    assert results_of(submission) == [("hidden", 2, True), ("main", 2, True)]
    assert submission.results.get(phase_split__dataset_split__codename="main").scores == {
        "Score": 3.0,
        "Other": 2,
    }
    assert submission.stdout.splitlines() == [
        f"evaluating {sid} attempt 2",
        f"evaluated {sid} attempt 2",
    ]
    assert int(submission.worker.rsplit("/", 1)[1].partition("#")[0]) in {
        p.pid for p in process_tree(successor.proc.pid)
    }


def test_a_submission_whose_evaluation_kills_the_worker_twice_fails_with_the_reason(
    rig, pausing, api
):
    node = node_name()
    worker = rig.worker(node)
    sid = submit_pause(api, pausing, 3)
    for attempt in (1, 2):
        tree = wait_for_evaluation(sid, worker, attempt=attempt)
        worker.kill()
        assert_all_gone(tree)
        worker = rig.worker(node)  # its recovery ran before it said it was ready

    submission = Submission.objects.get(pk=sid)
    assert submission.status == Status.FAILED and submission.failure_kind == "lost"
    assert "died while evaluating this submission, twice" in submission.failure_message
    assert (submission.attempt, submission.lost_count) == (2, 2)
    assert submission.finished_at is not None and submission.deadline_at is None
    assert not SubmissionResult.objects.filter(submission=submission).exists()
    mine = api("charlie").get(f"/api/v1/submissions/{sid}/").json()
    assert mine["status"] == "failed" and "twice" in mine["failure_message"]

    # The worker that took over serves on, and the failed submission stays failed.
    other = submit_pause(api, pausing, 0)
    (after,) = wait_final([other], timeout=30)
    assert after.status == Status.FINISHED
    assert Submission.objects.get(pk=sid).status == Status.FAILED


# ---------------------------------------------------------------- Redis restart


def test_a_redis_restart_during_a_burst_of_fifty_loses_none_and_evaluates_none_twice(
    rig, pausing, api, settings
):
    worker = rig.worker(node_name())
    client = api("charlie")
    ids: list[int] = []
    took: list[float] = []

    def one() -> None:
        started = time.monotonic()
        response = submit(client, pausing, "probe", "0.2", name="pause.txt")
        took.append(time.monotonic() - started)
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])

    for _ in range(20):
        one()
    rig.redis.kill()  # SIGKILL: the queued messages die with it
    stranded = Submission.objects.filter(pk__in=ids, status=Status.QUEUED).count()
    for _ in range(2):
        one()  # the broker is down: accepted anyway, left queued for the sweeper
    assert Submission.objects.filter(pk__in=ids[-2:], status=Status.QUEUED).count() == 2
    rig.redis.start()  # same port, empty
    assert rig.queued_messages() == 0
    for _ in range(28):
        one()
    assert len(ids) == 50
    # Otherwise the restart lost nothing and this test would prove nothing.
    assert stranded > 0
    # With the broker down, the request waits for the publish retries (about 1.5 s), no longer.
    assert max(took) < 5, took

    # Without any sweep, what was sent after the restart gets through: the web side and the
    # worker both reconnected. What was sent while Redis was down did not.
    after_restart = ids[22:]
    wait_final(after_restart, timeout=60)
    sent_while_down = Submission.objects.filter(pk__in=ids[20:22])
    assert {s.status for s in sent_while_down} == {Status.QUEUED}

    settings.SWEEPER_REQUEUE_AFTER_S = 1
    deadline = time.monotonic() + 90
    while Submission.objects.filter(pk__in=ids).exclude(status__in=Submission.FINAL).exists():
        assert time.monotonic() < deadline, f"not final after the sweeps:\n{worker.log()[-3000:]}"
        submissions_sweep()
        time.sleep(1)

    rows = wait_final(ids, timeout=1)
    assert {r.status for r in rows} == {Status.FINISHED}, [
        (r.pk, r.status, r.failure_message) for r in rows if r.status != Status.FINISHED
    ]
    assert {(r.attempt, r.lost_count) for r in rows} == {(1, 0)}
    # Each evaluated exactly once: one run's output, one result per split, all of attempt 1.
    for r in rows:
        assert r.stdout.splitlines() == [
            f"evaluating {r.pk} attempt 1",
            f"evaluated {r.pk} attempt 1",
        ]
        assert results_of(r) == [("hidden", 1, True), ("main", 1, True)]
    assert SubmissionResult.objects.filter(submission_id__in=ids).count() == 100
    # The stranded ones got through because the sweeper sent them again.
    assert sum(r.enqueue_count > 1 for r in rows) >= stranded
    # The worker reconnected to the restarted Redis by itself.
    assert worker.proc.poll() is None
    log = worker.log()
    assert "Connection to broker lost" in log
    assert log.count(f"Connected to redis://:**@127.0.0.1:{rig.redis.port}/0") >= 2


# ---------------------------------------------------------------- the sweeper


def test_the_sweeper_fails_a_running_submission_whose_worker_is_gone_for_good(rig, pausing, api):
    sid = submit_pause(api, pausing, 0)  # no worker listens: it stays queued
    ghost = "ghost@gone/4242"
    claimed = submission_claim(submission_id=sid, worker=ghost, time_limit_s=0.5)
    assert claimed is not None and claimed.status == Status.RUNNING

    just_before = claimed.deadline_at - dt.timedelta(seconds=1)
    assert submissions_sweep(now=just_before) == SweepReport(requeued=0, failed=0)
    assert Submission.objects.get(pk=sid).status == Status.RUNNING

    report = submissions_sweep(now=claimed.deadline_at + dt.timedelta(seconds=1))
    assert report == SweepReport(requeued=0, failed=1)
    submission = Submission.objects.get(pk=sid)
    assert submission.status == Status.FAILED and submission.failure_kind == "lost"
    assert ghost in submission.failure_message and "re-run" in submission.failure_message
    assert submission.deadline_at is None and submission.finished_at is not None

    # Should the ghost come back after all, its outcome is dropped.
    late = EvaluationRecord(
        ok=True,
        scores={"main": {"Score": 1, "Other": 1}, "hidden": {"Score": 1, "Other": 1}},
        missing_splits=[],
    )
    assert submission_record_outcome(submission=claimed, record=late) is False
    assert Submission.objects.get(pk=sid).status == Status.FAILED
    assert not SubmissionResult.objects.filter(submission_id=sid).exists()
    # The team reads that it was lost, without the server's worker name (a path-like
    # token the participant's failure text never carries); hosts read the whole message.
    mine = api("charlie").get(f"/api/v1/submissions/{sid}/").json()
    assert mine["status"] == "failed" and "stopped responding" in mine["failure_message"]
    assert ghost not in mine["failure_message"]
    hosts = api("alice").get(f"/api/v1/submissions/{sid}/").json()
    assert ghost in hosts["failure_message"]


def test_the_sweeper_resends_submissions_stuck_in_queued_and_a_live_worker_finishes_them(
    rig, pausing, api, settings
):
    ids = [submit_pause(api, pausing, 0) for _ in range(3)]
    assert rig.queued_messages() == 3
    rig.redis.client().flushall()  # the messages are lost; the rows still say queued
    rig.worker(node_name())
    time.sleep(1)  # a live worker, and nothing for it to do
    assert set(Submission.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        Status.QUEUED
    }

    # Not before they have waited SWEEPER_REQUEUE_AFTER_S: a slow queue is not a lost one.
    settings.SWEEPER_REQUEUE_AFTER_S = 300
    assert submissions_sweep() == SweepReport(requeued=0, failed=0)
    settings.SWEEPER_REQUEUE_AFTER_S = 1
    assert submissions_sweep() == SweepReport(requeued=3, failed=0)

    rows = wait_final(ids, timeout=30)
    assert [r.status for r in rows] == [Status.FINISHED] * 3, [
        (r.pk, r.status, r.failure_kind, r.failure_message, r.traceback[-1000:]) for r in rows
    ]
    assert {(r.attempt, r.enqueue_count, r.lost_count) for r in rows} == {(1, 2, 0)}
    for r in rows:
        assert results_of(r) == [("hidden", 1, True), ("main", 1, True)]
    assert submissions_sweep() == SweepReport(requeued=0, failed=0)


# ---------------------------------------------------------------- the database goes away


def test_the_workers_database_connections_dropping_during_a_burst_lose_nothing(
    rig, pausing, api, settings
):
    """What a PostgreSQL restart does to a worker: every connection it holds is cut. The
    worker's connections are told apart by their application_name, so the test's own
    survive (a real restart of the shared server would cut the test's too)."""
    from django.db import connection

    name = f"evalserver-faults-{uuid.uuid4().hex[:8]}"
    worker = rig.worker(node_name(), PGAPPNAME=name)
    ids = [submit_pause(api, pausing, 0.1) for _ in range(30)]

    def cut() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                [name],
            )
            return cursor.fetchone()[0]

    cuts = 0
    settings.SWEEPER_REQUEUE_AFTER_S = 1
    deadline = time.monotonic() + 60
    started = time.monotonic()
    while Submission.objects.filter(pk__in=ids).exclude(status__in=Submission.FINAL).exists():
        assert time.monotonic() < deadline, (
            list(
                Submission.objects.filter(pk__in=ids)
                .exclude(status__in=Submission.FINAL)
                .values_list("pk", "status", "attempt", "enqueue_count")
            ),
            worker.log()[-6000:],
        )
        if time.monotonic() - started < 4:
            cuts += cut()
        submissions_sweep()
        time.sleep(0.25)
    assert cuts > 0  # otherwise this test proved nothing

    rows = wait_final(ids, timeout=1)
    assert {r.status for r in rows} == {Status.FINISHED}, [
        (r.pk, r.status, r.failure_message) for r in rows if r.status != Status.FINISHED
    ]
    # None evaluated twice: each result is the one attempt that finished, and only one
    # attempt's output is on record.
    for r in rows:
        assert len(set(r.results.values_list("attempt", flat=True))) == 1
        attempt = r.attempt
        assert r.stdout.splitlines() == [
            f"evaluating {r.pk} attempt {attempt}",
            f"evaluated {r.pk} attempt {attempt}",
        ]

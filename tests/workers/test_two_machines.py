"""Two worker "machines" and no shared disk: each Celery worker has its own working folder,
cache, MEDIA_ROOT and EVALUATION_CACHE_DIR; they share PostgreSQL, a Redis of this test's
own and an S3 server (moto's standalone server, a real process). A burst of 200
submissions across two challenges on two queues; one machine is killed with SIGKILL
mid-burst and comes back (a reboot). Every submission ends finished, none is evaluated
twice, and no queue is stranded: both machines take both queues."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils import timezone

from challenges.models import Challenge, Submission, SubmissionResult
from challenges.services.submissions import submissions_sweep
from tests.conftest import files_under, require_service
from tests.services import (
    RedisProcess,
    S3Server,
    WorkerProcess,
    new_queue,
    publishing_to,
    storing_in,
    worker_env,
    worker_machine,
)
from tests.workers.pipeline_helpers import load_approved, participate, script_bundle, submit

pytestmark = [
    pytest.mark.services,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]
Status = Submission.Status
BURST = 200

# Says which challenge, submission and attempt ran it, so a second run would show.
EVALUATE = """
import json, time

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    meta = kwargs["submission_metadata"]
    truth = json.load(open(test_annotation_file))["answer"]
    guess = float(open(user_submission_file).read().strip())
    time.sleep(1.0 if guess % 10 == 9 else 0.05)  # one in ten is slow: a kill finds it running
    print(f"{TAG} scored {meta['id']} attempt {meta['attempt']}", flush=True)
    score = 1.0 / (1.0 + abs(truth - guess))
    return {"result": [{"main": {"Score": score, "Other": guess}}, {"hidden": {"Score": 0, "Other": 0}}]}
"""


def test_two_machines_without_a_shared_disk_finish_a_burst_of_200_when_one_is_killed(
    tmp_path, transactional_db, settings, users, host_teams, api
):
    require_service("redis-server (the Redis binary)", shutil.which("redis-server") is not None)
    redis = RedisProcess(workdir=tmp_path / "redis").start()
    s3 = S3Server(workdir=tmp_path / "moto").start()
    prefix = f"two-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:6]
    queue_a, queue_b = f"qa-{tag}", f"qb-{tag}"
    settings.MEDIA_ROOT = tmp_path / "web-media"
    # One participant's script sends the burst: not what the per-user throttle is about.
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "submit_user": ""}
    machines: dict[str, dict] = {}
    folders = contextlib.ExitStack()  # each machine's own media root, var and cache
    for name in ("one", "two"):
        home = tmp_path / f"machine-{name}"
        home.mkdir()
        own = folders.enter_context(worker_machine(home, name="worker"))
        machines[name] = {
            "home": home,
            "media_root": own["media_root"],
            "node": f"machine-{name}-{tag}@%h",
            "env": worker_env(
                **own,
                broker_url=redis.url,
                queue=new_queue(),  # its default queue; the challenges' queues are below
                EVALUATION_TIME_LIMIT_S="60",
                **s3.env(prefix),
            ),
        }
    started: list[WorkerProcess] = []

    def boot(name: str) -> WorkerProcess:
        machine = machines[name]
        worker = WorkerProcess(
            env=machine["env"],
            log_path=machine["home"] / f"worker-{len(started)}.log",
            node=machine["node"],
            concurrency=2,
            queue=f"{queue_a},{queue_b}",  # both: a dead machine strands no queue
            cwd=machine["home"],
        ).start()
        started.append(worker)
        return worker

    try:
        with storing_in(s3, settings, prefix), publishing_to(redis.url, new_queue()):
            challenges = []
            for title, queue in (("Alpha", queue_a), ("Beta", queue_b)):
                source = EVALUATE.replace("TAG", repr(title))
                challenge = load_approved(
                    script_bundle(source, title=title), users, host_teams["alice"]
                )
                Challenge.objects.filter(pk=challenge.pk).update(queue=queue)
                participate(users["charlie"], challenge)
                challenges.append(challenge)
            with ThreadPoolExecutor(2) as pool:  # the two machines start side by side
                _one, two = pool.map(boot, ["one", "two"])
            client = api("charlie")
            ids: list[int] = []
            killed_at = None
            burst_started = time.monotonic()
            on_two = Submission.objects.filter(worker__startswith=f"machine-two-{tag}@")

            def kill_two_if_busy(i: int) -> int | None:
                """Kill machine two while it runs a slow evaluation that started just now
                (it cannot end before the kill), once it has finished some."""
                slow = [pk for n, pk in enumerate(ids) if n % 50 % 10 == 9]
                recent = timezone.now() - dt.timedelta(seconds=0.4)
                if (
                    on_two.filter(status=Status.FINISHED).exists()
                    and on_two.filter(
                        pk__in=slow, status=Status.RUNNING, started_at__gt=recent
                    ).exists()
                ):
                    two.kill()  # SIGKILL to the whole machine: worker, pool, sandboxes
                    return i
                return None

            for i in range(BURST):
                response = submit(client, challenges[i % 2], "probe", str(i % 50), name="g.txt")
                assert response.status_code == 201, response.content
                ids.append(response.json()["id"])
                if killed_at is None and i >= BURST // 3:
                    killed_at = kill_two_if_busy(i)
            submitted_s = time.monotonic() - burst_started
            deadline = time.monotonic() + 60
            while killed_at is None:  # still evaluating the burst's slow ones
                assert time.monotonic() < deadline, "machine two never ran a slow one to die in"
                killed_at = kill_two_if_busy(BURST - 1)
                time.sleep(0.05)
            lost = on_two.filter(pk__in=ids, status=Status.RUNNING).count()
            two = boot("two")  # the reboot: its start-up recovery takes back what it held

            # Whatever the dead machine had taken off a queue and not started stays queued
            # in the table: once the queues are empty, the sweeper sends it again.
            settings.SWEEPER_REQUEUE_AFTER_S = 1
            client_redis = redis.client()
            deadline = time.monotonic() + 150
            pending = Submission.objects.filter(pk__in=ids).exclude(status__in=Submission.FINAL)
            while pending.exists():
                assert time.monotonic() < deadline, (
                    list(pending.values_list("pk", "status", "worker")[:20]),
                    started[-1].log()[-3000:],
                )
                if client_redis.llen(queue_a) + client_redis.llen(queue_b) == 0:
                    submissions_sweep()
                time.sleep(0.5)
            all_final_s = time.monotonic() - burst_started
    finally:
        for worker in started:
            worker.stop()
        s3.stop()
        redis.kill()
        folders.close()

    rows = list(Submission.objects.filter(pk__in=ids).select_related("phase__challenge"))
    assert len(rows) == BURST
    assert {r.status for r in rows} == {Status.FINISHED}, [
        (r.pk, r.status, r.failure_kind, r.failure_message) for r in rows if r.status != "finished"
    ]
    # None evaluated twice: one run's output, one result per split, of the final attempt.
    assert SubmissionResult.objects.filter(submission_id__in=ids).count() == 2 * BURST
    for r in rows:
        title = r.phase.challenge.title
        assert r.stdout.splitlines() == [f"{title} scored {r.pk} attempt {r.attempt}"]
        assert set(r.results.values_list("attempt", flat=True)) == {r.attempt}
        guess = float(ids.index(r.pk) % 50)
        main = r.results.get(phase_split__dataset_split__codename="main").scores
        assert main == {"Score": pytest.approx(1 / (1 + abs(42 - guess))), "Other": guess}
    # What the killed machine was running ran again, once, after its reboot.
    assert sum(r.attempt == 2 for r in rows) >= lost > 0
    # Both machines took work from both queues.
    for name in ("one", "two"):
        mine = [r for r in rows if r.worker.startswith(f"machine-{name}-{tag}@")]
        assert {r.phase.challenge.queue for r in mine} == {queue_a, queue_b}, name
    # No shared disk: no MEDIA_ROOT holds a file; each machine's cache holds what it fetched.
    assert files_under(settings.MEDIA_ROOT) == set()
    for machine in machines.values():
        assert files_under(machine["media_root"]) == set()
    print(
        f"\nburst of {BURST}: submitted in {submitted_s:.1f} s, all final after "
        f"{all_final_s:.1f} s; machine two killed after submission {killed_at + 1} with "
        f"{lost} running, {sum(r.attempt == 2 for r in rows)} re-run after its reboot"
    )

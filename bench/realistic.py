"""A realistic script through the whole pipeline: the tabular starter's own evaluate()
(pandas + scikit-learn) on its 400-row sample submission, uploaded over the REST API to
gunicorn, scored by the two-process worker, until its leaderboard row is visible.

Measured against the same evaluate() called in two plain loops side by side (two
processes, as the worker has two), in the same run, on the same files; and against two
loops that fork a child per call (no sandbox, no platform): the ceiling of any design
that gives each submission a fresh process, as ours does so that nothing of one
evaluation reaches the next.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.bare_loop import BARE_LOOP
from bench.scenario import Cast, Poller, Watcher
from bench.services import CpuShares
from bench.upload import free_port, gunicorn

STARTER = "tabular_classification"
PHASE = "dev"


@dataclass
class Realistic:
    platform_per_s: float
    bare_per_s: float  # two loops side by side
    bare_cpu_ms: float  # one call's CPU in a warm loop
    fork_per_s: float  # two loops side by side forking a child per call (no sandbox)
    fork_cpu_ms: float  # one such child's CPU: its call, and what a fresh fork costs it
    child_cpu_ms: list[float]  # per submission, as the worker recorded it
    evaluate_cpu_ms: list[float]  # of which the evaluate() call's own
    child_wall_ms: list[float]
    e2e_ms: list[float]  # 8 concurrent submitters, REST upload -> leaderboard row visible
    cpu_ms: dict[str, float]  # per submission of the burst, by part of the stack

    @property
    def ratio(self) -> float:
        return self.platform_per_s / self.bare_per_s

    @property
    def platform_cpu_ms(self) -> dict[str, float]:
        """CPU per submission of the burst outside the children's evaluate() calls, by part:
        everything the platform spends (the web, the worker's processes, PostgreSQL, Redis,
        and the children's own confinement and fork) but the evaluation itself and the
        bench's clients."""
        parts = {
            name: self.cpu_ms[name]
            for name in ("web", "worker_main", "worker_pool", "warm_parents", "postgres", "redis")
        }
        evaluate = statistics.fmean(self.evaluate_cpu_ms) if self.evaluate_cpu_ms else 0.0
        parts["children_outside_evaluate"] = max(self.cpu_ms["children"] - evaluate, 0.0)
        return parts

    @property
    def fork_ratio(self) -> float:
        """The ceiling of `ratio` for any design with a fresh process per submission."""
        return self.fork_per_s / self.bare_per_s


# The web as docker-compose.yml runs it: WEB_CONCURRENCY=2 sync workers (gunicorn's default
# worker class), with the access log. (Threads would cost each upload more CPU: GIL hand-offs
# and the threaded worker's poller; the CPU per upload is what this bench reports.)
PRODUCTION_WEB = {"workers": 2, "threads": 1, "access_log": True}


def measure_realistic(
    cast: Cast,
    *,
    burst: int,
    bare_calls: int,
    per_submitter: int,
    logs: Path,
    worker_pid: int,
    database: str,
):
    from challenges.models import ChallengePhase, Submission

    phase, submission_bytes, script_root = _arena(cast)
    tokens = _teams(cast, phase.challenge, count=8)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    path = f"/api/v1/challenges/{phase.challenge_id}/phases/{PHASE}/submissions/"
    poller = Poller()
    with gunicorn(port, logs / "gunicorn-realistic.log", **PRODUCTION_WEB) as web:
        # Warm both pool processes (and their warm parents) before measuring.
        warm = _Client(url + path)
        ids = [warm.post(tokens[i % 8], submission_bytes) for i in range(8)]
        warm.close()
        poller.wait_all(ids, interval=0.01, timeout=300)

        # Throughput: `burst` uploads from 4 client threads, first accepted -> last row.
        shares = CpuShares(
            web=web, worker=worker_pid, database=database, own_backend=_own_backend()
        )
        shares.start()
        ids, started = _burst(url + path, tokens, submission_bytes, count=burst)
        done = poller.wait_all(ids, interval=0.02, timeout=burst + 120)
        shares.stop()
        cpu_ms = {name: used * 1000 / len(ids) for name, used in shares.used.items()}
        platform_per_s = len(ids) / (done - started)
        rows = Submission.objects.filter(pk__in=ids).values_list("execution", flat=True)
        child_cpu = [r["cpu_s"] * 1000 for r in rows]
        evaluate_cpu = [r.get("evaluate_cpu_s", 0.0) * 1000 for r in rows]
        child_wall = [r["wall_s"] * 1000 for r in rows]

        # Latency with 8 submitters each waiting for its own result before the next.
        e2e = _concurrent_submitters(url + path, tokens, submission_bytes, per_submitter)

    annotation = ChallengePhase.objects.get(pk=phase.pk).test_annotation.path
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as folder:
        submission = Path(folder) / "submission.csv"
        submission.write_bytes(submission_bytes)
        # Loop, fork, fork, loop, half the calls each: the machine's speed drifts (a VM's
        # neighbours), and the ceiling is a ratio of the two; this order cancels a drift
        # that is steady over the four.
        runs: dict[str, list[tuple[float, float]]] = {"loop": [], "fork": []}
        for mode in ("loop", "fork", "fork", "loop"):
            runs[mode].append(
                _side_by_side(script_root, annotation, submission, max(bare_calls // 2, 1), mode)
            )
    bare, fork = (tuple(map(statistics.fmean, zip(*runs[m], strict=True))) for m in runs)
    return Realistic(
        platform_per_s,
        bare_per_s=bare[0],
        bare_cpu_ms=bare[1] * 1000,
        fork_per_s=fork[0],
        fork_cpu_ms=fork[1] * 1000,
        child_cpu_ms=child_cpu,
        evaluate_cpu_ms=evaluate_cpu,
        child_wall_ms=child_wall,
        e2e_ms=e2e,
        cpu_ms=cpu_ms,
    )


def _own_backend() -> int:
    """The PID of the PostgreSQL backend serving this process's connection (the poller)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _arena(cast: Cast):
    """The starter loaded and approved, its dev phase open to many submissions; the sample
    submission's bytes; the script unpacked for the bare loops."""
    from challenges.bundle import load_bundle
    from challenges.models import ChallengePhase
    from challenges.services.bundles import challenge_load_bundle
    from challenges.services.challenges import challenge_approve
    from starters.build import build_starter, sample_submissions

    out = Path(tempfile.mkdtemp(prefix="bench-starter-"))
    zip_path = build_starter(STARTER, out)
    submission = sample_submissions(out)[STARTER][PHASE].read_bytes()
    with zip_path.open("rb") as fh:
        challenge = challenge_load_bundle(
            source=fh, user=cast.host, host_team=cast.host_team
        ).challenge
    challenge_approve(challenge=challenge, reviewer=cast.admin)
    phase = challenge.phases.get(codename=PHASE)
    ChallengePhase.objects.filter(pk=phase.pk).update(
        max_submissions_per_day=10**7,
        max_submissions_per_month=10**7,
        max_submissions=10**7,
        max_concurrent_submissions_allowed=10**5,
    )
    script_root = out / "script"
    with load_bundle(str(zip_path)) as bundle:
        for rel, content in bundle.spec.evaluation_script.files.items():
            target = script_root / "evaluation_script" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    return phase, submission, script_root


def _teams(cast: Cast, challenge, *, count: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from challenges.services.participation import challenge_participate, participant_team_create

    tokens = []
    for i in range(count):
        user = get_user_model().objects.create_user(
            f"bench-real-{challenge.pk}-{i}", f"r{i}@bench.invalid", None
        )
        team = participant_team_create(name=f"bench-real-{challenge.pk}-{i}", creator=user)
        challenge_participate(challenge=challenge, team=team, user=user, accept_terms=True)
        tokens.append(Token.objects.create(user=user).key)
    return tokens


class _Client:
    """One submitter's connection to gunicorn, kept alive between uploads as a browser's
    or the CLI's (requests.Session) is; opened again when the server closed it."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.conn: http.client.HTTPConnection | None = None

    def post(self, token: str, body: bytes) -> int:
        boundary = f"bench-{uuid.uuid4().hex}"
        data = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="submission.csv"\r\nContent-Type: text/csv\r\n\r\n'
            ).encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {
            "Authorization": f"Token {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        while True:
            reused = self.conn is not None
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request("POST", self.path, body=data, headers=headers)
                answer = self.conn.getresponse()
                content = answer.read()
                break
            except (http.client.HTTPException, ConnectionError):
                # A kept connection the server closed between two uploads (its keep-alive
                # ran out before our request): again on a new one. A new one failing is
                # an error.
                self.close()
                if not reused:
                    raise
        if answer.will_close:
            self.close()
        if answer.status != 201:
            raise RuntimeError(f"upload answered {answer.status}: {content[:300]!r}")
        return json.loads(content)["id"]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _burst(url: str, tokens: list[str], body: bytes, *, count: int) -> tuple[list[int], float]:
    ids: list[int] = []
    lock = threading.Lock()
    left = [count]
    first = []

    def client(token: str) -> None:
        connection = _Client(url)
        try:
            while True:
                with lock:
                    if not left[0]:
                        return
                    left[0] -= 1
                sid = connection.post(token, body)
                with lock:
                    if not first:
                        first.append(time.perf_counter())
                    ids.append(sid)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(tokens[i],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ids, first[0]


def _concurrent_submitters(url: str, tokens: list[str], body: bytes, rounds: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def submitter(token: str) -> None:
        connection = _Client(url)
        try:
            for _ in range(rounds):
                started = time.perf_counter()
                sid = connection.post(token, body)
                visible = watcher.wait(sid, timeout=120)
                with lock:
                    latencies.append((visible - started) * 1000)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    with Watcher(interval=0.005) as watcher:
        threads = [threading.Thread(target=submitter, args=(t,)) for t in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return latencies


def _side_by_side(script_root: Path, annotation: str, submission: Path, calls: int, mode: str):
    """Calls per second of two loops (BARE_LOOP's `mode`) run at once in two processes, and
    the CPU time of one call."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                BARE_LOOP,
                str(script_root),
                annotation,
                str(submission),
                str(calls),
                mode,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "go"
    for proc in procs:  # both start together
        proc.stdin.write("\n")
        proc.stdin.flush()
    results = [json.loads(proc.stdout.readline()) for proc in procs]
    for proc in procs:
        proc.wait(timeout=60)
    rate = sum(calls / r["wall_s"] for r in results)
    cpu = statistics.median(r["cpu_s"] / calls for r in results)
    return rate, cpu

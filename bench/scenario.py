"""The cast and the challenges of a benchmark run, and how it submits and waits.

Imported only after django.setup(). Everything goes through the services the web process
uses: challenge_load_bundle, challenge_approve, challenge_participate, submission_create.
"""

from __future__ import annotations

import io
import threading
import time
import types
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from bench.services import BenchError
from challenges.models import (
    Challenge,
    ChallengeParticipation,
    ChallengePhase,
    Submission,
    SubmissionResult,
)
from challenges.services.bundles import challenge_load_bundle
from challenges.services.challenges import challenge_approve
from challenges.services.participation import challenge_participate, participant_team_create
from challenges.services.submissions import submission_create
from challenges.services.teams import host_team_create
from challenges.submission_access import Submitter
from evalserver.testing import one_phase_config, script_bundle_zip

PHASE = "bench"
SUBMISSION_BODY = b"41\n"
ANNOTATION_BODY = '{"answer": 42}'

TRIVIAL_EVALUATE = '''\
import json


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    """One score from one number: the cheapest evaluate() that still reads both files."""
    with open(test_annotation_file) as fh:
        truth = json.load(fh)["answer"]
    with open(user_submission_file) as fh:
        guess = float(fh.read().strip() or 0)
    score = 1.0 / (1.0 + abs(truth - guess))
    return {"result": [{"main": {"Score": score}}], "submission_result": {"main": {"Score": score}}}
'''

SLEEPY_EVALUATE = TRIVIAL_EVALUATE.replace(
    "import json\n", "import json\nimport time\n", 1
).replace(
    "    with open(test_annotation_file)",
    "    time.sleep(0.2)\n    with open(test_annotation_file)",
    1,
)

# A typical starter script's import: the warm parent pays for it once per script version.
PANDAS_EVALUATE = "import pandas  # noqa: F401\n" + TRIVIAL_EVALUATE

# High enough that no quota ever refuses a benchmark submission. EvalAI lowers the
# concurrent quota to the daily one when it is bigger, so both are the same here.
NO_QUOTAS = {
    "max_submissions_per_day": 1_000_000,
    "max_submissions_per_month": 1_000_000,
    "max_submissions": 1_000_000,
    "max_concurrent_submissions_allowed": 1_000_000,
}


def bundle(evaluate_source: str, *, title: str) -> bytes:
    """An EvalAI bundle with one phase, one public split and `evaluate_source` as script."""
    config = one_phase_config(
        title=title,
        name="Bench",
        codename=PHASE,
        schema={"labels": ["Score"], "default_order_by": "Score"},
        phase={
            "is_submission_public": True,
            "allowed_submission_file_types": ".txt",
            **NO_QUOTAS,
        },
    )
    return script_bundle_zip(
        config,
        evaluate_source=evaluate_source,
        files={"annotations/truth.json": ANNOTATION_BODY},
        description="<p>benchmark</p>",
    )


def load_module(source: str, name: str) -> types.ModuleType:
    """`source` as a module of this process, for the bare loops."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102 - our own source
    return module


@dataclass
class Cast:
    host: Any
    admin: Any
    participant: Any
    host_team: Any

    @classmethod
    def create(cls) -> Cast:
        users = get_user_model().objects
        host = users.create_user("bench-host", "host@bench.invalid", None)
        return cls(
            host=host,
            admin=users.create_superuser("bench-admin", "admin@bench.invalid", None),
            participant=users.create_user("bench-participant", "p@bench.invalid", None),
            host_team=host_team_create(name="Bench hosts", creator=host),
        )


@dataclass
class Arena:
    """One challenge, its phase, and the participant's team entered in it."""

    challenge: Challenge
    phase: ChallengePhase
    participation: ChallengeParticipation | None = None

    @classmethod
    def load(cls, cast: Cast, evaluate_source: str, *, title: str) -> Arena:
        """Loaded, not yet approved."""
        challenge = challenge_load_bundle(
            source=io.BytesIO(bundle(evaluate_source, title=title)),
            user=cast.host,
            host_team=cast.host_team,
        ).challenge
        return cls(challenge=challenge, phase=challenge.phases.get(codename=PHASE))

    def approve_and_enter(self, cast: Cast) -> Arena:
        self.challenge = challenge_approve(challenge=self.challenge, reviewer=cast.admin)
        self.phase = self.challenge.phases.get(codename=PHASE)
        team = participant_team_create(
            name=f"bench-team-{self.challenge.pk}", creator=cast.participant
        )
        self.participation = challenge_participate(
            challenge=self.challenge, team=team, user=cast.participant, accept_terms=True
        )
        return self

    def submit(self, cast: Cast) -> Submission:
        """What the REST API's create view does once it has parsed the upload."""
        # The submitter the view resolves with access_submitter, known here already.
        submitter = Submitter(
            user=cast.participant,
            phase=self.phase,
            is_host=False,
            participation=self.participation,
        )
        return submission_create(
            submitter=submitter,
            upload=SimpleUploadedFile("submission.txt", SUBMISSION_BODY, "text/plain"),
        )


# ---------------------------------------------------------------- waiting

_FAILED = (Submission.Status.FAILED, Submission.Status.CANCELLED)


def _tables() -> tuple[str, str]:
    qn = connection.ops.quote_name
    return qn(Submission._meta.db_table), qn(SubmissionResult._meta.db_table)


def failure_of(submission_id: int) -> str:
    row = Submission.objects.filter(pk=submission_id).values("status", "failure_message").first()
    return f"submission {submission_id} is {row['status']}: {row['failure_message']}"


class Poller:
    """Raw SQL on this process's connection: the cheapest way to see a result row appear.

    Autocommit, so each query sees what other connections have committed.
    """

    def __init__(self) -> None:
        submissions, results = _tables()
        self.one_sql = (
            f"SELECT s.status, EXISTS (SELECT 1 FROM {results} r WHERE r.submission_id = s.id) "
            f"FROM {submissions} s WHERE s.id = %s"
        )
        self.many_sql = (
            f"SELECT count(DISTINCT r.submission_id) FROM {results} r "
            "WHERE r.submission_id = ANY(%s)"
        )
        self.failed_sql = f"SELECT min(id) FROM {submissions} WHERE id = ANY(%s) AND status IN %s"

    def wait_one(self, submission_id: int, *, interval: float, timeout: float) -> float:
        """Block until the submission's result row is visible; returns perf_counter then."""
        deadline = time.perf_counter() + timeout
        with connection.cursor() as cur:
            while True:
                cur.execute(self.one_sql, [submission_id])
                status, visible = cur.fetchone()
                now = time.perf_counter()
                if visible:
                    return now
                if status in _FAILED:
                    raise BenchError(failure_of(submission_id))
                if now > deadline:
                    raise BenchError(
                        f"submission {submission_id} still {status} after {timeout:g} s"
                    )
                time.sleep(interval)

    def wait_all(self, ids: list[int], *, interval: float, timeout: float) -> float:
        """Block until every submission's result row is visible; returns perf_counter then."""
        deadline = time.perf_counter() + timeout
        checks = 0
        with connection.cursor() as cur:
            while True:
                cur.execute(self.many_sql, [ids])
                done = cur.fetchone()[0]
                now = time.perf_counter()
                if done == len(ids):
                    return now
                checks += 1
                if checks % 100 == 0 or now > deadline:
                    cur.execute(self.failed_sql, [ids, tuple(_FAILED)])
                    failed = cur.fetchone()[0]
                    if failed is not None:
                        raise BenchError(failure_of(failed))
                if now > deadline:
                    raise BenchError(
                        f"{len(ids) - done} of {len(ids)} submissions unfinished after {timeout:g} s"
                    )
                time.sleep(interval)


class Watcher:
    """One thread that polls for many waiters: each submitter registers its submission and
    waits on an event, and one query every `interval` answers for all of them. The
    measuring costs the machine one poll per interval, not one per waiting submitter (8
    pollers at 5 ms took a share of the 2 cores they were timing)."""

    def __init__(self, *, interval: float) -> None:
        submissions, results = _tables()
        self.sql = (
            f"SELECT s.id, s.status, EXISTS (SELECT 1 FROM {results} r WHERE "
            f"r.submission_id = s.id) FROM {submissions} s WHERE s.id = ANY(%s)"
        )
        self.interval = interval
        self.waiting: dict[int, list] = {}  # id -> [event, perf_counter when seen, error]
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()

    def wait(self, submission_id: int, *, timeout: float) -> float:
        """Block until the submission's result row is visible; returns perf_counter then."""
        entry = [threading.Event(), None, None]
        with self.lock:
            self.waiting[submission_id] = entry
        if not entry[0].wait(timeout):
            with self.lock:
                self.waiting.pop(submission_id, None)
            raise BenchError(f"submission {submission_id} unfinished after {timeout:g} s")
        if entry[2] is not None:
            raise BenchError(entry[2])
        return entry[1]

    def _run(self) -> None:
        try:
            with connection.cursor() as cur:
                while not self.stopped.is_set():
                    with self.lock:
                        ids = list(self.waiting)
                    if ids:
                        cur.execute(self.sql, [ids])
                        now = time.perf_counter()
                        for sid, status, visible in cur.fetchall():
                            if visible or status in _FAILED:
                                with self.lock:
                                    entry = self.waiting.pop(sid)
                                entry[1] = now
                                if not visible:
                                    entry[2] = failure_of(sid)
                                entry[0].set()
                    time.sleep(self.interval)
        finally:
            connection.close()  # this thread's own

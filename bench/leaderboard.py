"""The leaderboard read at scale: `teams` teams, `submissions` finished submissions in
all, bulk-inserted (as rows, not through the worker: the figure is about reading), then
the entries derived once with `leaderboard_rebuild`, as a new bundle version would.

Reads go through the real URL, middleware and DRF view with Django's test client in this
process (no network, no gunicorn): what is timed is everything the web process does for
the request. Imported only after django.setup().
"""

from __future__ import annotations

import datetime as dt
import io
import random
import time
import warnings
from dataclasses import dataclass

from django.db import connection, transaction
from rest_framework.test import APIClient

from bench.scenario import ANNOTATION_BODY, NO_QUOTAS, TRIVIAL_EVALUATE, Cast
from bench.services import BenchError
from challenges.models import (
    ChallengeParticipation,
    ChallengePhase,
    ChallengePhaseSplit,
    ParticipantTeam,
    Submission,
    SubmissionResult,
)
from challenges.services.bundles import challenge_load_bundle
from challenges.services.challenges import challenge_approve
from challenges.services.leaderboard_refresh import (
    leaderboard_add_results,
    leaderboard_rebuild,
    leaderboard_refresh_team,
)
from evalserver.testing import one_phase_config, script_bundle_zip

PHASE = "board"
LABELS = ["Accuracy", "Loss", "F1"]
HOST = "localhost"


@dataclass
class Board:
    url: str
    phase: ChallengePhase
    team_ids: list[int]
    setup_s: float
    rebuild_s: float
    entries: int


def _bundle() -> bytes:
    config = one_phase_config(
        title="Bench leaderboard",
        name="Board",
        codename=PHASE,
        schema={
            "labels": LABELS,
            "default_order_by": "Accuracy",
            "metadata": {"Loss": {"sort_ascending": True}},
        },
        phase={
            "leaderboard_public": True,
            "allowed_submission_file_types": ".txt",
            **NO_QUOTAS,
        },
        splits=[{"name": "Public", "codename": "public", "visibility": 3}],
    )
    return script_bundle_zip(
        config,
        evaluate_source=TRIVIAL_EVALUATE,
        files={"annotations/truth.json": ANNOTATION_BODY},
        description="<p>benchmark</p>",
    )


def populate(cast: Cast, *, teams: int, submissions: int, seed: int = 7) -> Board:
    started = time.perf_counter()
    rng = random.Random(seed)
    challenge = challenge_load_bundle(
        source=io.BytesIO(_bundle()), user=cast.host, host_team=cast.host_team
    ).challenge
    challenge = challenge_approve(challenge=challenge, reviewer=cast.admin)
    phase = challenge.phases.get(codename=PHASE)
    split = ChallengePhaseSplit.objects.get(phase=phase)
    user = cast.participant
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with transaction.atomic():
        rows = ParticipantTeam.objects.bulk_create(
            [
                ParticipantTeam(
                    name=f"board-team-{i:05d}", created_by=user, invitation_code=f"b{i}"
                )
                for i in range(teams)
            ],
            batch_size=2000,
        )
        team_ids = [t.pk for t in rows]
        ChallengeParticipation.objects.bulk_create(
            [
                ChallengeParticipation(challenge=challenge, team_id=t, accepted_terms_by=user)
                for t in team_ids
            ],
            batch_size=2000,
        )
        made = Submission.objects.bulk_create(
            [
                Submission(
                    phase=phase,
                    team_id=team_ids[i % teams],
                    created_by=user,
                    status=Submission.Status.FINISHED,
                    submitted_at=t0 + dt.timedelta(seconds=30 * i),
                    finished_at=t0 + dt.timedelta(seconds=30 * i + 2),
                    input_file="submissions/bench.txt",
                    file_name="bench.txt",
                    input_sha256="0" * 64,
                    input_size=3,
                    # Most teams show most of their work; some keep submissions private.
                    is_public=rng.random() < 0.8,
                    wall_time_s=rng.uniform(0.05, 2.0),
                    method_name=f"method {i % 17}",
                )
                for i in range(submissions)
            ],
            batch_size=5000,
        )
        SubmissionResult.objects.bulk_create(
            [
                SubmissionResult(
                    submission_id=s.pk,
                    phase_split=split,
                    attempt=1,
                    scores={
                        "Accuracy": round(rng.random(), 6),
                        "Loss": round(rng.uniform(0, 3), 6),
                        # A few results lack a label (partial metrics).
                        **({"F1": round(rng.random(), 6)} if rng.random() < 0.95 else {}),
                    },
                )
                for s in made
            ],
            batch_size=5000,
        )
    # Right after a bulk insert the planner still thinks the tables are empty and
    # joins 100,000 results by nested loops (minutes instead of seconds); autovacuum
    # would analyze them soon, a loader should not wait for it.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    setup_s = time.perf_counter() - started
    t = time.perf_counter()
    entries = leaderboard_rebuild(phase=phase)
    rebuild_s = time.perf_counter() - t
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    url = f"/api/v1/challenges/{challenge.pk}/phases/{PHASE}/splits/public/leaderboard/"
    return Board(url, phase, team_ids, setup_s, rebuild_s, entries)


def read_times(url: str, *, samples: int, warmup: int = 20, **query) -> list[float]:
    """Seconds per GET of `url` by an anonymous reader, through URL routing, middleware
    and the DRF view."""
    # Static files are not collected for the benchmark; whitenoise says so once per client.
    warnings.filterwarnings("ignore", message="No directory at")
    client = APIClient()
    for _ in range(warmup):
        _get(client, url, query)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        _get(client, url, query)
        times.append(time.perf_counter() - started)
    return times


def _get(client: APIClient, url: str, query: dict) -> None:
    response = client.get(url, query, HTTP_HOST=HOST, secure=True)
    if response.status_code != 200:
        raise BenchError(
            f"GET {url} {query} answered {response.status_code}: {response.content[:300]!r}"
        )


def merge_times(board: Board, *, samples: int) -> list[float]:
    """Seconds `leaderboard_add_results` takes to merge one new result into its team's
    entries: what recording a result adds. Each sample is rolled back."""
    rng = random.Random(13)
    split = ChallengePhaseSplit.objects.select_related("leaderboard").get(phase=board.phase)
    times = []
    for i in range(samples):
        with transaction.atomic():
            submission = Submission.objects.create(
                phase=board.phase,
                team_id=rng.choice(board.team_ids),
                created_by_id=board.phase.challenge.created_by_id,
                status=Submission.Status.FINISHED,
                submitted_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
                input_file="submissions/bench.txt",
                file_name="bench.txt",
                input_sha256="0" * 64,
                input_size=3,
                is_public=True,
            )
            scores = {label: rng.random() for label in LABELS}
            SubmissionResult.objects.create(
                submission=submission, phase_split=split, attempt=1, scores=scores
            )
            started = time.perf_counter()
            leaderboard_add_results(
                submission=submission, scores_by_split={split.pk: scores}, splits=[split]
            )
            times.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    return times


def refresh_times(board: Board, *, samples: int) -> list[float]:
    """Seconds to recompute one team's entries from all its results (what a toggle of
    is_public, a final pick, a baseline mark or a ban costs)."""
    rng = random.Random(11)
    times = []
    for _ in range(samples):
        team_id = rng.choice(board.team_ids)
        started = time.perf_counter()
        leaderboard_refresh_team(phase=board.phase, team_id=team_id)
        times.append(time.perf_counter() - started)
    return times

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
from dataclasses import dataclass

import yaml
from django.db import connection, transaction
from rest_framework.test import APIClient

from bench.scenario import ANNOTATION_BODY, NO_QUOTAS, TRIVIAL_EVALUATE, Cast, _zip
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
from challenges.services.leaderboards import leaderboard_rebuild, leaderboard_refresh_team

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
    config = {
        "title": "Bench leaderboard",
        "description": "templates/description.html",
        "evaluation_script": "evaluation_script.zip",
        "start_date": "2020-01-01 00:00:00",
        "end_date": "2099-01-01 00:00:00",
        "published": True,
        "leaderboard": [
            {
                "id": 1,
                "schema": {
                    "labels": LABELS,
                    "default_order_by": "Accuracy",
                    "metadata": {"Loss": {"sort_ascending": True}},
                },
            }
        ],
        "challenge_phases": [
            {
                "id": 1,
                "name": "Board",
                "codename": PHASE,
                "description": "templates/description.html",
                "is_public": True,
                "leaderboard_public": True,
                "test_annotation_file": "annotations/truth.json",
                "allowed_submission_file_types": ".txt",
                **NO_QUOTAS,
            }
        ],
        "dataset_splits": [{"id": 1, "name": "Public", "codename": "public"}],
        "challenge_phase_splits": [
            {"challenge_phase_id": 1, "leaderboard_id": 1, "dataset_split_id": 1, "visibility": 3}
        ],
    }
    return _zip(
        {
            "challenge_config.yaml": yaml.safe_dump(config, sort_keys=False),
            "templates/description.html": "<p>benchmark</p>",
            "annotations/truth.json": ANNOTATION_BODY,
            "evaluation_script.zip": _zip({"__init__.py": TRIVIAL_EVALUATE}),
        }
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


def refresh_times(board: Board, *, samples: int) -> list[float]:
    """Seconds to rewrite one team's entries (what recording a result adds)."""
    rng = random.Random(11)
    times = []
    for _ in range(samples):
        team_id = rng.choice(board.team_ids)
        started = time.perf_counter()
        leaderboard_refresh_team(phase=board.phase, team_id=team_id)
        times.append(time.perf_counter() - started)
    return times

"""Leaderboards without a worker: submissions are made as rows and finished through the
same services a worker calls (`submission_claim`, `submission_record_outcome`)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils import timezone

from challenges.models import Challenge, ParticipantTeam, Submission
from challenges.services.submissions import (
    EvaluationRecord,
    submission_claim,
    submission_record_outcome,
)
from evalserver.testing import one_phase_config, script_bundle_zip
from tests.workers.pipeline_helpers import GOOD_EVALUATE, load_approved, participate

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_clock = itertools.count()

LABELS = ["Acc", "Err", "F1"]


def config(
    *,
    phase: dict[str, Any] | None = None,
    main: dict[str, Any] | None = None,
    hidden: dict[str, Any] | None = None,
    **challenge: Any,
) -> dict[str, Any]:
    """Labels Acc (higher is better, the default), Err (`sort_ascending`) and F1; a public
    split `main` and a host-only split `hidden`."""
    return one_phase_config(
        title="Leaderboard probe",
        name="Dev",
        codename="dev",
        schema={
            "labels": LABELS,
            "default_order_by": "Acc",
            "metadata": {"Err": {"sort_ascending": True, "description": "error rate"}},
        },
        phase={
            "leaderboard_public": True,
            "is_submission_public": False,
            "max_submissions_per_day": 1000,
            "max_concurrent_submissions_allowed": 100,
            "allowed_submission_file_types": ".txt",
            **(phase or {}),
        },
        splits=[
            {"name": "Main", "codename": "main", "visibility": 3, **(main or {})},
            {"name": "Hidden", "codename": "hidden", "visibility": 1, **(hidden or {})},
        ],
        **challenge,
    )


def load(users, host_team, **options: Any) -> Challenge:
    data = script_bundle_zip(
        config(**options),
        evaluate_source=GOOD_EVALUATE,
        files={"annotations/truth.json": '{"answer": 42}'},
    )
    return load_approved(data, users, host_team)


def team(django_user_model, challenge: Challenge, name: str, user=None) -> ParticipantTeam:
    """A team called `name` taking part in `challenge` (its one member is made if needed)."""
    if user is None:
        user = django_user_model.objects.create_user(name.lower(), f"{name.lower()}@example.org")
    return participate(user, challenge, team_name=name).team


def submit_row(
    challenge: Challenge,
    team: ParticipantTeam,
    *,
    minutes: int | None = None,
    is_public: bool = True,
    phase: str = "dev",
) -> Submission:
    at = T0 + dt.timedelta(minutes=next(_clock) if minutes is None else minutes)
    return Submission.objects.create(
        phase=challenge.phases.get(codename=phase),
        team=team,
        created_by=team.created_by,
        status=Submission.Status.QUEUED,
        submitted_at=at,
        input_file="submissions/x.txt",
        file_name="x.txt",
        input_sha256="0" * 64,
        input_size=1,
        is_public=is_public,
        method_name=f"method of {team.name}",
    )


def finish(submission: Submission, scores: dict[str, dict[str, float]], **record: Any) -> None:
    claimed = submission_claim(submission_id=submission.pk, worker="test/1", time_limit_s=60)
    assert claimed is not None
    expected = {ps.dataset_split.codename for ps in claimed.phase.phase_splits.all()}
    done = submission_record_outcome(
        submission=claimed,
        record=EvaluationRecord(
            ok=True, scores=scores, missing_splits=sorted(expected - set(scores)), **record
        ),
    )
    assert done


def scored(
    challenge: Challenge,
    team: ParticipantTeam,
    main: dict[str, float],
    hidden: dict[str, float] | None = None,
    **options: Any,
) -> Submission:
    """A finished submission of `team` scoring `main` (and `hidden`, default the same)."""
    record = {k: options.pop(k) for k in ("wall_time_s",) if k in options}
    submission = submit_row(challenge, team, **options)
    finish(submission, {"main": main, "hidden": main if hidden is None else hidden}, **record)
    submission.refresh_from_db()
    return submission


def board_url(challenge: Challenge, split: str = "main", phase: str = "dev", tail: str = "") -> str:
    return f"/api/v1/challenges/{challenge.pk}/phases/{phase}/splits/{split}/leaderboard/{tail}"


def teams_of(response) -> list[str | None]:
    assert response.status_code == 200, response.content
    return [row["team"] for row in response.json()["rows"]]


def now() -> dt.datetime:
    return timezone.now()

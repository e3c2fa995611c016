"""Helpers for tests that push submissions through the real pipeline."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import yaml
from django.core.management import call_command

from challenges.models import (
    Challenge,
    ChallengeParticipation,
    ParticipantTeam,
    ParticipantTeamMember,
    Submission,
)
from challenges.prepared import statement_text
from challenges.services.bundles import challenge_load_bundle
from challenges.services.challenges import challenge_approve
from evalserver.testing import one_phase_config, script_bundle_zip


def load_approved(source, users, team) -> Challenge:
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    challenge = challenge_load_bundle(source=source, user=users["alice"], host_team=team).challenge
    challenge_approve(challenge=challenge, reviewer=users["admin"])
    Challenge.objects.filter(pk=challenge.pk).update(published=True)
    challenge.refresh_from_db()
    return challenge


def participate(user, challenge: Challenge, team_name: str | None = None) -> ChallengeParticipation:
    team = ParticipantTeam.objects.create(
        name=team_name or f"team-{user.username}-{challenge.pk}", created_by=user
    )
    ParticipantTeamMember.objects.create(team=team, user=user)
    return ChallengeParticipation.objects.create(
        challenge=challenge, team=team, accepted_terms_by=user
    )


def submit(
    client,
    challenge: Challenge,
    phase: str,
    content: bytes | str,
    name: str = "submission.csv",
    **data: Any,
):
    if isinstance(content, str):
        content = content.encode()
    upload = io.BytesIO(content)
    upload.name = name
    return client.post(
        f"/api/v1/challenges/{challenge.pk}/phases/{phase}/submissions/",
        {"file": upload, **data},
        format="multipart",
    )


def wait_final(ids: list[int], timeout: float = 60) -> list[Submission]:
    deadline = time.monotonic() + timeout
    while True:
        rows = list(Submission.objects.filter(pk__in=ids).order_by("pk"))
        if len(rows) == len(ids) and all(r.is_final_state for r in rows):
            return rows
        if time.monotonic() > deadline:
            states = {r.pk: r.status for r in rows}
            raise AssertionError(f"submissions not final after {timeout} s: {states}")
        time.sleep(0.1)


SCRIPT_CONFIG = one_phase_config(
    title="Pipeline probe",
    name="Probe",
    codename="probe",
    schema={"labels": ["Score", "Other"], "default_order_by": "Score"},
    phase={
        "is_submission_public": True,
        "max_submissions_per_day": 1000,
        "max_submissions_per_month": 10000,
        "max_submissions": 100000,
        "max_concurrent_submissions_allowed": 100,
        "allowed_submission_file_types": ".json, .csv, .txt",
    },
    splits=[
        {"name": "Main", "codename": "main", "visibility": 3},
        {"name": "Hidden", "codename": "hidden", "visibility": 1},
    ],
)


def script_bundle(
    evaluate_source: str,
    *,
    title: str = "Pipeline probe",
    script_files: dict[str, str] | None = None,
    **phase_overrides: Any,
) -> bytes:
    """A small EvalAI bundle whose evaluation_script/__init__.py is `evaluate_source`
    (plus `script_files`, such as a requirements.txt, beside it)."""
    config = yaml.safe_load(yaml.safe_dump(SCRIPT_CONFIG))
    config["title"] = title
    config["challenge_phases"][0].update(phase_overrides)
    return script_bundle_zip(
        config,
        evaluate_source=evaluate_source,
        files={"annotations/truth.json": '{"answer": 42}'},
        script_files=script_files,
    )


GOOD_EVALUATE = """
import json

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    truth = json.load(open(test_annotation_file))["answer"]
    guess = float(open(user_submission_file).read().strip() or 0)
    score = 1.0 / (1.0 + abs(truth - guess))
    print("scored", kwargs["submission_metadata"]["id"])
    return {"result": [{"main": {"Score": score, "Other": guess}}, {"hidden": {"Score": score / 2, "Other": 0}}],
            "submission_result": {"main": {"Score": score}}}
"""


def run_local(zip_path, phase, submission) -> dict:
    """What `manage.py evaluate_local ... --json` prints, parsed."""
    out = io.StringIO()
    call_command(
        "evaluate_local",
        str(zip_path),
        "--phase",
        phase,
        "--submission",
        str(submission),
        "--json",
        stdout=out,
        stderr=io.StringIO(),
    )
    return json.loads(out.getvalue())


def statements_of(queries) -> list[str]:
    """The SQL of captured queries, without savepoints and transaction ends (they differ
    between a test's transaction and a request's or a worker's); a statement sent as
    `EXECUTE` of a prepared plan as the SQL it was prepared from."""
    skipped = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")
    return [statement_text(q["sql"]) for q in queries if not q["sql"].startswith(skipped)]

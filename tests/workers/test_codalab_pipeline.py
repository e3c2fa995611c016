"""A Codabench bundle through the real pipeline: PostgreSQL, Redis and a `celery worker`."""

from __future__ import annotations

import pytest

from challenges.models import Submission
from tests.challenges.codalab_factory import result_zip, v2_bundle
from tests.workers.pipeline_helpers import load_approved, participate, submit, wait_final


def test_a_result_zip_is_scored_per_task_by_the_bundles_program(pipeline, users, host_teams, api):
    challenge = load_approved(v2_bundle(open_now=True), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    response = submit(api("charlie"), challenge, "feedback", result_zip("a b c x"), name="r.zip")
    assert response.status_code == 201, response.content
    (done,) = wait_final([response.json()["id"]], timeout=90)
    assert done.status == Submission.Status.FINISHED, (done.failure_message, done.stderr)
    mine = api("charlie").get(f"/api/v1/submissions/{done.pk}/").json()
    scores = {r["split"]: r["scores"] for r in mine["results"]}
    assert scores["easy"]["Accuracy"] == pytest.approx(0.75)
    assert scores["hard"]["Hits"] == pytest.approx(2.0)
    assert scores["easy"]["Mean accuracy"] == pytest.approx(0.625)
    assert done.submission_result["detailed_results"]["easy"] == "<b>3 hits</b>"
    assert "== scoring program" in done.stdout

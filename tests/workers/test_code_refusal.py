"""A worker whose kernel allows no network namespace refuses code submissions (a platform
error the participant can read), unless the operator allows them without one."""

from __future__ import annotations

import io

import pytest

from challenges.models import Submission
from tests.workers import models
from tests.workers.models import code_bundle
from tests.workers.pipeline_helpers import load_approved, participate, submit
from workers import code_evaluation
from workers.evaluation import evaluate_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_model(users, host_teams, api):
    challenge = load_approved(io.BytesIO(code_bundle()), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    response = submit(
        api("charlie"), challenge, "probe", models.model_bytes(models.GOOD), name="model.pkl"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_without_a_network_namespace_a_code_submission_fails_as_a_platform_error(
    queued_model, monkeypatch, settings
):
    settings.EVALUATION_ALLOW_CODE_WITHOUT_NETWORK_ISOLATION = False
    monkeypatch.setattr(code_evaluation, "network_isolated", lambda: False)
    evaluate_submission(submission_id=queued_model, worker_node="test")
    submission = Submission.objects.get(pk=queued_model)
    assert submission.status == Submission.Status.FAILED
    assert submission.failure_kind == "platform"
    assert "cannot cut models off from the network" in submission.failure_message


def test_the_operator_setting_lets_code_run_without_one(queued_model, monkeypatch, settings):
    settings.EVALUATION_ALLOW_CODE_WITHOUT_NETWORK_ISOLATION = True
    monkeypatch.setattr(code_evaluation, "network_isolated", lambda: False)
    assert not code_evaluation.code_refused()
    settings.EVALUATION_ALLOW_CODE_WITHOUT_NETWORK_ISOLATION = False
    assert code_evaluation.code_refused()

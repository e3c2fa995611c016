"""Model uploads as Numerai runs them (DESIGN section 16), end to end on the real stack
(PostgreSQL, Redis, a Celery worker process): a model uploaded while a round is open runs
at once on it and counts (until the team's bot submits later), runs on the validation
data and gets diagnostics that match a hand computation; a broken model shows failed with
its cause, a model needing a module the runtime lacks shows "version mismatch" naming it,
and a platform fault shows error.
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from challenges.models import RoundSubmission, Tournament, TournamentModel, WebhookDelivery
from challenges.services.webhooks import webhook_create
from tests import tournament_helpers as th
from tests.challenges.test_webhooks import Receiver
from tests.workers import models
from tests.workers.pipeline_helpers import load_approved, participate
from tests.workers.test_tournament import BASE, _file, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
Status = RoundSubmission.Status
ModelStatus = TournamentModel.Status


def _hand_diagnostics(fn):
    """Per-era Pearson correlation of fn(f) with the validation targets, by hand."""
    rows = [line.split(",") for line in th.validation_features().splitlines()[1:]]
    eras: dict[str, list] = {}
    for _id, era, f, target in rows:
        eras.setdefault(era, []).append((fn(int(f)), float(target), th.example_prediction(int(f))))
    corrs, examples = [], []
    for values in eras.values():
        p, t, e = (np.array(column) for column in zip(*values, strict=True))
        corrs.append(float(np.corrcoef(p, t)[0, 1]))
        examples.append(float(np.corrcoef(p, e)[0, 1]))
    return corrs, examples


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_a_model_uploaded_while_a_round_is_open_runs_at_once_with_diagnostics(
    pipeline, users, host_teams, api, django_user_model, settings, receiver
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    challenge = load_approved(th.tournament_bundle(validation=True), users, host_teams["alice"])
    phase = challenge.phases.get()
    base = BASE.format(c=challenge.pk)
    people = {
        name: django_user_model.objects.create_user(name, f"{name}@example.org", "pw-123456")
        for name in ("anna", "carl", "dora")
    }
    teams = {
        name: participate(user, challenge, team_name=f"team-{name}")
        for name, user in people.items()
    }
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def client(user):
        c = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        c.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return c

    anna, carl, dora = (client(people[n]) for n in ("anna", "carl", "dora"))
    carl_hook = webhook_create(
        user=people["carl"], team=teams["carl"].team, challenge=challenge, url=receiver.url
    )
    # The runtimes offered: the worker's own Python, with its package versions.
    runtimes = api(None).get("/api/v1/tournament-runtimes/").json()
    assert runtimes["default"] == runtimes["runtimes"][-1]["version"]
    assert runtimes["runtimes"][-1]["packages"]["cloudpickle"]
    refused = anna.post(
        base + "models/",
        {"file": _file(models.model_bytes(th.FOLLOWS), "m.pkl"), "python_version": "2.7"},
    )
    assert refused.status_code == 400
    assert runtimes["default"] in refused.json()["detail"]

    # A round opens with no model yet; anna uploads hers while it is open.
    answer = api("alice").post(
        base + "rounds/",
        {
            "live_features": _file(th.live_features(1), "live.csv"),
            "closes_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
    )
    assert answer.status_code == 201, answer.content
    uploaded = anna.post(
        base + "models/",
        {
            "file": _file(models.model_bytes(th.FOLLOWS), "m.pkl"),
            "python_version": runtimes["default"],
        },
    )
    assert uploaded.status_code == 201, uploaded.content
    assert uploaded.json()["status"] == "pending"
    model_id = uploaded.json()["id"]
    # It runs at once on the open round, and counts for it.
    run = wait_for(
        lambda: RoundSubmission.objects.filter(
            round__number=1, model_id=model_id, status=Status.PENDING
        ).first(),
        "the new model's run on the open round",
    )
    board = api(None).get(base + "rounds/1/leaderboard/").json()
    assert [(row["team"], row["submission"]) for row in board["rows"]] == [("team-anna", run.pk)]

    # ... and on the validation data: diagnostics as computed by hand.
    wait_for(
        lambda: (
            TournamentModel.objects.get(pk=model_id).status
            in (ModelStatus.SUCCESS, ModelStatus.FAILED, ModelStatus.ERROR)
        ),
        "anna's diagnostics",
    )
    got = anna.get(f"/api/v1/tournament-models/{model_id}/diagnostics/").json()
    assert got["status"] == "success", got
    corrs, examples = _hand_diagnostics(lambda f: f / 10)
    assert [row["corr"] for row in got["per_era"]] == pytest.approx(corrs)
    assert got["summary"]["corr_mean"] == pytest.approx(np.mean(corrs))
    assert got["summary"]["corr_std"] == pytest.approx(np.std(corrs, ddof=1))
    assert got["summary"]["example_corr_mean"] == pytest.approx(np.mean(examples))
    # Predicting f/10 is the feature itself: full exposure.
    assert got["summary"]["feature_exposure_max"] == pytest.approx(1.0)
    assert got["per_era"][-1]["cumulative_corr"] == pytest.approx(sum(corrs))
    csv_text = anna.get(f"/api/v1/tournament-models/{model_id}/diagnostics.csv").content.decode()
    assert csv_text.splitlines()[0] == "era,rows,corr,cumulative_corr,feature_exposure"
    assert len(csv_text.splitlines()) == 1 + th.ERAS
    # The pages: the model's status and runtime, and its diagnostics drawn per era.
    from django.test import Client

    browser = Client()
    browser.force_login(people["anna"])
    page = browser.get(f"/challenges/{challenge.pk}/phases/rounds/tournament/").content.decode()
    assert "Diagnostics" in page and f"Python {runtimes['default']}" in page
    assert "cloudpickle " + runtimes["runtimes"][-1]["packages"]["cloudpickle"] in page
    page = browser.get(
        f"/challenges/{challenge.pk}/phases/rounds/tournament/models/{model_id}/diagnostics/"
    ).content.decode()
    assert page.count('<rect class="bar') == th.ERAS and '<path class="best"' in page
    # Others' models' diagnostics are not theirs to read.
    assert carl.get(f"/api/v1/tournament-models/{model_id}/diagnostics/").status_code == 404

    # The team's bot submits later: its file counts instead of the model's run.
    later = anna.post(
        base + "rounds/1/submissions/",
        {"file": _file(th.predictions_csv(1, lambda f: 1 - f / 10), "p.csv")},
    )
    assert later.status_code == 201
    board = api(None).get(base + "rounds/1/leaderboard/").json()
    assert board["rows"][0]["submission"] == later.json()["id"]

    # A broken model: failed, with its cause, on the API and to the team's webhook.
    broken = carl.post(base + "models/", {"file": _file(models.model_bytes(th.BROKEN), "m.pkl")})
    broken_id = broken.json()["id"]
    wait_for(
        lambda: TournamentModel.objects.get(pk=broken_id).status == ModelStatus.FAILED,
        "carl's broken model",
    )
    mine = {m["id"]: m for m in carl.get(base + "models/").json()}
    assert mine[broken_id]["failure_cause"] == "exception"
    assert "feature 'g'" in mine[broken_id]["failure_message"]
    told = wait_for(
        lambda: WebhookDelivery.objects.filter(
            webhook=carl_hook, payload__event="model_failed", status="delivered"
        ).first(),
        "carl's failure webhook",
    )
    assert told.payload["failureCause"] == "exception" and told.payload["status"] == "failed"

    # A model needing a module this runtime lacks: failed, version mismatch, naming it.
    mismatch = carl.post(
        base + "models/",
        {"file": _file(models.model_needing_a_missing_module("lightgbm_x"), "m.pkl")},
    )
    mismatch_id = mismatch.json()["id"]
    wait_for(
        lambda: TournamentModel.objects.get(pk=mismatch_id).status == ModelStatus.FAILED,
        "carl's mismatched model",
    )
    failed = TournamentModel.objects.get(pk=mismatch_id)
    assert failed.failure_cause == "version_mismatch"
    assert "version mismatch" in failed.failure_message
    assert "lightgbm_x" in failed.failure_message and "Python 3." in failed.failure_message

    # A platform fault (the validation data is gone from storage): error, not failed.
    Tournament.objects.filter(phase=phase).update(
        validation_features="validation/missing.csv", validation_features_sha256="0" * 64
    )
    faulted = dora.post(base + "models/", {"file": _file(models.model_bytes(th.FOLLOWS), "m.pkl")})
    faulted_id = faulted.json()["id"]
    wait_for(
        lambda: (
            TournamentModel.objects.get(pk=faulted_id).status
            in (ModelStatus.ERROR, ModelStatus.FAILED)
        ),
        "dora's model under a platform fault",
    )
    errored = TournamentModel.objects.get(pk=faulted_id)
    assert (errored.status, errored.failure_cause) == (ModelStatus.ERROR, "platform")


# th.FOLLOWS, taking its time on the validation data (the rows with targets): its run is
# still going when another message of it arrives.
SLOW_ON_VALIDATION = """
import time
import pandas as pd

def predict(features):
    if "target" in features.columns:
        time.sleep(4)
    return pd.DataFrame({"prediction": features["f"] / 10.0}, index=features.index)
"""


def test_a_model_uploaded_while_the_broker_is_down_is_run_once_when_the_sweeper_resends_it(
    pipeline, users, host_teams, api, django_user_model, settings, monkeypatch
):
    """The upload's messages (the open round's run and the validation run) never reach the
    broker: the model stays pending, and its round run queued, until the sweeper sends
    them again; the upload's message turning up after all (it was only slow) runs nothing
    twice."""
    from celery import current_app
    from kombu.exceptions import OperationalError
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from challenges.services.queues import rounds_queue
    from challenges.tournaments import tournaments_sweep
    from challenges.tournaments.model_runs import VALIDATE_TASK

    challenge = load_approved(th.tournament_bundle(validation=True), users, host_teams["alice"])
    base = BASE.format(c=challenge.pk)
    erin = django_user_model.objects.create_user("erin", "erin@example.org", "pw-123456")
    team = participate(erin, challenge, team_name="team-erin").team
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=erin).key}")
    opened = api("alice").post(
        base + "rounds/",
        {
            "live_features": _file(th.live_features(1), "live.csv"),
            "closes_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
    )
    assert opened.status_code == 201, opened.content

    def broker_down(*_args, **_kwargs):
        raise OperationalError("Error 111 connecting to the broker: Connection refused.")

    with monkeypatch.context() as down:
        down.setattr(current_app, "send_task", broker_down)
        uploaded = client.post(
            base + "models/", {"file": _file(models.model_bytes(SLOW_ON_VALIDATION), "m.pkl")}
        )
    assert uploaded.status_code == 201, uploaded.content
    model_id = uploaded.json()["id"]
    time.sleep(2)  # a live worker, and nothing for it to do
    assert TournamentModel.objects.get(pk=model_id).status == ModelStatus.PENDING
    (run,) = RoundSubmission.objects.filter(model_id=model_id)
    assert run.status == Status.QUEUED

    # Not before they have waited SWEEPER_REQUEUE_AFTER_S: a slow queue is not a lost one.
    settings.SWEEPER_REQUEUE_AFTER_S = 300
    report = tournaments_sweep()
    assert (report.resent, report.models_resent) == (0, 0)
    settings.SWEEPER_REQUEUE_AFTER_S = 1
    report = tournaments_sweep()
    assert (report.resent, report.models_resent) == (1, 1)
    # ... and the upload's own message arrives after all, behind the sweeper's, while the
    # run that message started is still predicting (the sweeper's has claimed the model).
    wait_for(
        lambda: (
            TournamentModel.objects.filter(pk=model_id).exclude(status=ModelStatus.PENDING).first()
        ),
        "erin's model, claimed by the sweeper's message",
    )
    current_app.send_task(VALIDATE_TASK, args=[model_id], queue=rounds_queue(challenge.queue))

    model = wait_for(
        lambda: TournamentModel.objects.filter(
            pk=model_id, status__in=(ModelStatus.SUCCESS, ModelStatus.FAILED, ModelStatus.ERROR)
        ).first(),
        "erin's model, sent again",
    )
    assert model.status == ModelStatus.SUCCESS, (model.failure_cause, model.failure_message)
    assert len(model.run_token) == 32  # the sweeper's message ran it
    corrs, _examples = _hand_diagnostics(lambda f: f / 10)
    assert [row["corr"] for row in model.diagnostics["per_era"]] == pytest.approx(corrs)
    wait_for(
        lambda: RoundSubmission.objects.filter(pk=run.pk, status=Status.PENDING).exists(),
        "erin's round run, sent again",
    )
    # The model predicted on the validation data once: one stored predictions file.
    folder = f"validation-predictions/{challenge.pk}/{model.phase_id}/{team.pk}"
    _dirs, files = default_storage.listdir(folder)
    assert [name for name in files if name.startswith(f"model-{model_id}")] == [
        f"model-{model_id}.csv"
    ]
    assert TournamentModel.objects.get(pk=model_id).status == ModelStatus.SUCCESS
    report = tournaments_sweep()
    assert (report.resent, report.models_resent) == (0, 0)

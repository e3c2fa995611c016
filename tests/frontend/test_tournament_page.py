"""The tournament page: anyone who sees the phase sees rounds and rankings (the same
numbers as the API); teams upload models and see their failures; hosts open rounds and
upload targets, and nobody else can."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.utils import timezone

from challenges import tournaments as svc
from challenges.models import Round, RoundSubmission, TournamentModel
from tests import tournament_helpers as th
from tests.workers.pipeline_helpers import load_approved, participate

pytestmark = pytest.mark.django_db


def _file(content: str | bytes, name: str) -> io.BytesIO:
    upload = io.BytesIO(content.encode() if isinstance(content, str) else content)
    upload.name = name
    return upload


@pytest.fixture
def world(users, host_teams, monkeypatch):
    monkeypatch.setattr("challenges.tournaments.core.send", lambda *args: None)
    challenge = load_approved(th.tournament_bundle(), users, host_teams["alice"])
    participate(users["charlie"], challenge, team_name="charlies")
    return challenge


def url(challenge, tail: str = "") -> str:
    return f"/challenges/{challenge.pk}/phases/rounds/tournament/{tail}"


def test_hosts_open_rounds_and_upload_targets_from_the_page_and_others_cannot(
    world, client_as, users
):
    live = {"live_features": _file(th.live_features(1), "live.csv"), "data_version": "w1"}
    assert client_as("bob").post(url(world, "open/"), live).status_code == 403
    live["live_features"].seek(0)
    assert client_as("charlie").post(url(world, "open/"), live).status_code == 403
    live["live_features"].seek(0)
    answer = client_as("alice").post(url(world, "open/"), live)
    assert answer.status_code == 302 and answer["Location"].endswith("?round=1")
    opened = Round.objects.get(phase__challenge=world)
    assert opened.data_version == "w1"
    page = client_as("alice").get(url(world)).content.decode()
    assert "Round <strong>1</strong>" in page and "Upload targets" in page

    early = client_as("alice").post(
        url(world, "rounds/1/targets/"), {"targets": _file(th.targets(1), "t.csv")}, follow=True
    )
    assert "upload its targets after it closes" in early.content.decode()
    assert (
        client_as("charlie")
        .post(url(world, "rounds/1/targets/"), {"targets": _file(th.targets(1), "t.csv")})
        .status_code
        == 403
    )


def test_a_team_uploads_a_model_submits_and_sees_its_failures_and_scores(world, client_as, users):
    charlie = client_as("charlie")
    charlie.post(url(world, "models/"), {"file": _file(b"model", "model.pkl")})
    assert TournamentModel.objects.filter(team__name="charlies").count() == 1
    svc.round_open(
        user=users["alice"], phase=world.phases.get(), live_features=_file(th.live_features(1), "l")
    )
    run = RoundSubmission.objects.get()
    RoundSubmission.objects.filter(pk=run.pk).update(
        status="failed", failure_kind="exception", failure_message="KeyError: 'g'"
    )
    answer = charlie.post(
        url(world, "rounds/1/submit/"),
        {"file": _file(th.predictions_csv(1, lambda f: f / 10), "p.csv")},
        follow=True,
    )
    page = answer.content.decode()
    assert "Predictions for round 1 accepted" in page
    assert "KeyError: &#x27;g&#x27;" in page  # its model's failure, on its own page
    assert "Pending (waiting for targets)" in page  # the round submission's status

    # Targets: the page shows the same numbers as the API, and the team's chart.
    Round.objects.update(closes_at=timezone.now() - dt.timedelta(seconds=1))
    opened = Round.objects.get()
    svc.round_targets_upload(user=None, round=opened, targets=_file(th.targets(1), "t"))
    sub = RoundSubmission.objects.get(source="file")
    scores = {"corr_mean": 0.123456, "corr_std": 0.1, "sharpe": 1.2, "max_drawdown": -0.01}
    assert svc.round_score_record(
        submission_id=sub.pk, targets_version=1, scores=scores, per_era={"e": 0.1}
    )
    page = client_as(None).get(url(world)).content.decode()
    assert "0.1235" in page and "<svg" in page and "corr_mean of charlies by round" in page
    api_rows = (
        client_as(None)
        .get(f"/api/v1/challenges/{world.pk}/phases/rounds/tournament/leaderboard/")
        .json()
    )
    assert api_rows["rows"][0]["corr_mean"] == pytest.approx(0.123456)


def test_the_challenge_page_links_to_the_tournament(world, client_as):
    page = client_as(None).get(f"/challenges/{world.pk}/").content.decode()
    assert url(world) in page

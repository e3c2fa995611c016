"""`evalserver-cli` for tournaments against a live server: what a bot does when its webhook
fires (open round, live data, predictions; refused after the close) and a model upload."""

from __future__ import annotations

import io
import sys

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from challenges import tournaments as svc
from challenges.models import Round, TournamentModel
from evalserver import cli
from tests import tournament_helpers as th
from tests.workers.models import model_bytes
from tests.workers.pipeline_helpers import load_approved, participate

pytestmark = pytest.mark.django_db(transaction=True)


def run(capsys, *argv) -> tuple[int, str, str]:
    old, sys.stdin = sys.stdin, io.StringIO("")
    try:
        code = cli.main(list(argv))
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return code, out, err


def test_a_bot_reads_the_round_downloads_live_data_submits_and_is_refused_late(
    live_server, users, host_teams, capsys, tmp_path, monkeypatch
):
    monkeypatch.setattr("challenges.tournaments.core.send", lambda *args, **kwargs: None)
    challenge = load_approved(th.tournament_bundle(), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    svc.round_open(
        user=users["alice"],
        phase=challenge.phases.get(),
        live_features=io.BytesIO(th.live_features(1).encode()),
        data_version="w1",
    )
    token = Token.objects.create(user=users["charlie"]).key
    common = ["--url", live_server.url, "--token", token]
    where = [str(challenge.pk), "rounds"]

    live = tmp_path / "live.csv"
    code, out, _ = run(capsys, *common, "round", *where, "--live", str(live))
    assert code == 0 and "round 1 (data w1) open until" in out
    assert live.read_text() == th.live_features(1)

    model = tmp_path / "model.pkl"
    model.write_bytes(model_bytes(th.FOLLOWS))
    code, out, _ = run(capsys, *common, "model", *where, str(model), "--current")
    assert code == 0 and "(current)" in out
    assert TournamentModel.objects.get().is_current

    predictions = tmp_path / "p.csv"
    predictions.write_text(th.predictions_csv(1, lambda f: f / 10))
    code, out, _ = run(capsys, *common, "round-submit", *where, str(predictions))
    assert code == 0 and "round 1: submission" in out and "pending" in out
    code, out, _ = run(capsys, *common, "tournament", *where, "--round", "1")
    assert code == 0 and "pending" in out

    Round.objects.update(closes_at=timezone.now())
    code, _, err = run(capsys, *common, "round-submit", *where, str(predictions), "--round", "1")
    assert code == 1 and "409" in err and "closed at" in err

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
    monkeypatch.setattr("challenges.tournaments.model_runs._send", lambda *args: None)
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

    # The runtimes, a model pickled under one of them, its status with the cause, and its
    # diagnostics (as a worker would record them).
    code, out, _ = run(capsys, *common, "runtime")
    assert (
        code == 0 and f"Python {sys.version.split()[0]} (default)" in out and "cloudpickle" in out
    )
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    code, out, _ = run(capsys, *common, "model", *where, str(model), "--python", version)
    assert code == 0 and f"Python {version}: pending" in out
    code, _, err = run(capsys, *common, "model", *where, str(model), "--python", "2.7")
    assert code == 1 and "not offered" in err and version in err
    failed = TournamentModel.objects.order_by("-pk").first()
    TournamentModel.objects.filter(pk=failed.pk).update(
        status="failed", failure_cause="version_mismatch", failure_message="version mismatch: x"
    )
    code, out, _ = run(capsys, *common, "models", *where)
    assert code == 0 and "failed: version mismatch" in out and "version mismatch: x" in out
    first = TournamentModel.objects.order_by("pk").first()
    TournamentModel.objects.filter(pk=first.pk).update(
        status="success",
        diagnostics={"corr_mean": 0.25, "per_era": [{"era": "e1", "rows": 8, "corr": 0.25}]},
    )
    diagnostics_csv = tmp_path / "d.csv"
    code, out, _ = run(capsys, *common, "diagnostics", str(first.pk), "--csv", str(diagnostics_csv))
    assert code == 0 and "corr_mean: 0.25" in out
    assert diagnostics_csv.read_text().splitlines()[1].startswith("e1,8,0.25,0.25")

    predictions = tmp_path / "p.csv"
    predictions.write_text(th.predictions_csv(1, lambda f: f / 10))
    code, out, _ = run(capsys, *common, "round-submit", *where, str(predictions))
    assert code == 0 and "round 1: submission" in out and "pending" in out
    code, out, _ = run(capsys, *common, "tournament", *where, "--round", "1")
    assert code == 0 and "pending" in out

    Round.objects.update(closes_at=timezone.now())
    code, _, err = run(capsys, *common, "round-submit", *where, str(predictions), "--round", "1")
    assert code == 1 and "409" in err and "closed at" in err

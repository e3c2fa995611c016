"""A live tournament end to end on the real stack (PostgreSQL, Redis, a Celery worker
process): teams' cloudpickled models run on every round, a webhook bot is told and
submits, late submissions are refused, targets arrive, everything is scored per era and
ranked per round and over rounds; then a second round with one model replaced and one
broken, and corrected targets that re-score it.
"""

from __future__ import annotations

import io
import json
import statistics
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from challenges.models import Round, RoundSubmission, WebhookDelivery
from challenges.services.webhooks import webhook_create, webhook_signature
from challenges.tournaments import round_open, tournament_model_upload
from tests import tournament_helpers as th
from tests.challenges.test_webhooks import Receiver
from tests.workers import models
from tests.workers.pipeline_helpers import load_approved, participate
from tests.workers.test_faults import fault_env, rig  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
Status = RoundSubmission.Status
BASE = "/api/v1/challenges/{c}/phases/rounds/tournament/"


def _file(content: str | bytes, name: str) -> io.BytesIO:
    upload = io.BytesIO(content.encode() if isinstance(content, str) else content)
    upload.name = name
    return upload


def wait_for(predicate, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def expected_corr_mean(number: int, fn, shift: float = 0.0) -> float:
    """By hand: the mean over eras of Pearson's correlation (statistics module)."""
    features = th.features(number)
    truth: dict[str, list[tuple[float, float]]] = {}
    for line in th.targets(number, shift).splitlines()[1:]:
        key, era, target = line.split(",")
        truth.setdefault(era, []).append((fn(features[key]), float(target)))
    per_era = [statistics.correlation(*zip(*pairs, strict=True)) for pairs in truth.values()]
    return sum(per_era) / len(per_era)


def _close(phase, number: int):
    """The round's close time arrives (set to now rather than waited for)."""
    closed = timezone.now()
    Round.objects.filter(phase=phase, number=number).update(closes_at=closed)
    return closed


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def tournament(pipeline, users, host_teams, settings, django_user_model):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    challenge = load_approved(th.tournament_bundle(), users, host_teams["alice"])
    people = {
        name: django_user_model.objects.create_user(name, f"{name}@example.org", "pw-123456")
        for name in ("anna", "ben", "carl")
    }
    people["bot"] = users["charlie"]
    teams = {
        name: participate(user, challenge, team_name=f"team-{name}")
        for name, user in people.items()
    }
    return challenge, people, teams


def test_it_runs_a_tournament_with_models_and_a_bot_over_two_rounds(
    tournament, users, api, receiver, settings
):
    challenge, people, teams = tournament
    phase = challenge.phases.get()
    base = BASE.format(c=challenge.pk)
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def client(user):
        c = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        c.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return c

    anna, ben, carl, bot = (client(people[n]) for n in ("anna", "ben", "carl", "bot"))
    host = api("alice")

    # Three teams upload models; the bot's team registers its webhook, and so does carl's
    # (to hear about its model's failures).
    for who, source in ((anna, th.FOLLOWS), (ben, th.AGAINST), (carl, th.MODULO)):
        answer = who.post(
            base + "models/", {"file": _file(models.model_bytes(source), "model.pkl")}
        )
        assert answer.status_code == 201, answer.content
    bot_hook = webhook_create(
        user=people["bot"], team=teams["bot"].team, challenge=challenge, url=receiver.url
    )
    carl_hook = webhook_create(
        user=people["carl"], team=teams["carl"].team, challenge=challenge, url=receiver.url
    )

    # ---------------------------------------------------------------- round 1
    # Far enough ahead for a loaded machine; the test then moves the close time to "now"
    # instead of sleeping until it (time passes: the close arrives).
    closes = timezone.now() + timedelta(hours=1)
    answer = host.post(
        base + "rounds/",
        {
            "live_features": _file(th.live_features(1), "live.csv"),
            "data_version": "v1",
            "closes_at": closes.isoformat(),
        },
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["number"] == 1 and answer.json()["status"] == "open"

    # The bot is told (signed, like every round webhook) ...
    wait_for(
        lambda: WebhookDelivery.objects.filter(
            webhook=bot_hook, status="delivered", payload__roundNumber=1
        ).exists(),
        "the bot's round 1 webhook",
    )
    (headers, body) = next(
        (h, b)
        for h, b in receiver.requests
        if WebhookDelivery.objects.get(pk=int(h["X-Evalserver-Delivery"])).webhook_id == bot_hook.pk
    )
    assert headers["X-Evalserver-Signature"] == webhook_signature(bot_hook.secret, body)
    told = json.loads(body)
    assert {"roundNumber": 1, "dataVersion": "v1", "isTest": False}.items() <= told.items()
    # ... asks for the current round, downloads its live data and submits.
    current = bot.get(base + "rounds/current/").json()
    assert current["number"] == 1 and current["data_version"] == "v1"
    live = bot.get(current["live_features_url"])
    assert live.status_code == 200
    assert b"".join(live.streaming_content).decode() == th.live_features(1)
    bad = bot.post(
        base + "rounds/1/submissions/", {"file": _file("id,prediction\nnope,1\n", "p.csv")}
    )
    assert bad.status_code == 400 and "not in this round" in bad.json()["detail"]
    first = bot.post(
        base + "rounds/1/submissions/",
        {"file": _file(th.predictions_csv(1, lambda f: 1 - f / 10), "p.csv")},
    )
    assert first.status_code == 201, first.content
    last = bot.post(
        base + "rounds/1/submissions/",
        {"file": _file(th.predictions_csv(1, lambda f: f / 10 + (f % 2) / 20), "p.csv")},
    )
    assert last.status_code == 201 and last.json()["status"] == "pending"

    # Every model ran; its predictions wait for the targets: pending on the leaderboard.
    runs = wait_for(
        lambda: (
            RoundSubmission.objects.filter(round__number=1, source="model")
            .exclude(status__in=[Status.QUEUED, Status.PREDICTING])
            .count()
            == 3
        ),
        "three model runs",
    )
    runs = RoundSubmission.objects.filter(round__number=1, source="model")
    assert {r.status for r in runs} == {Status.PENDING}, [
        (r.status, r.failure_message) for r in runs
    ]
    board = api(None).get(base + "rounds/1/leaderboard/").json()
    assert len(board["rows"]) == 4
    assert {row["status"] for row in board["rows"]} == {"pending"}
    assert all(row["rank"] is None and row["corr_mean"] is None for row in board["rows"])

    # The round closes: a late submission is refused with the close time; the targets come.
    early = host.post(base + "rounds/1/targets/", {"file": _file(th.targets(1), "t.csv")})
    assert (
        early.status_code == 400 and "upload its targets after it closes" in early.json()["detail"]
    )
    closes = _close(phase, 1)
    late = bot.post(
        base + "rounds/1/submissions/",
        {"file": _file(th.predictions_csv(1, lambda f: f / 10), "p.csv")},
    )
    assert late.status_code == 409
    assert late.json()["closes_at"] == closes.isoformat()
    assert "closed at" in late.json()["detail"]
    answer = host.post(base + "rounds/1/targets/", {"file": _file(th.targets(1), "t.csv")})
    assert answer.status_code == 202 and answer.json() == {"scoring": 5}

    wait_for(
        lambda: not RoundSubmission.objects.filter(round__number=1, status=Status.SCORING).exists(),
        "round 1 scoring",
    )
    board = api(None).get(base + "rounds/1/leaderboard/").json()
    by_team = {row["team"]: row for row in board["rows"]}
    assert [row["team"] for row in board["rows"]][0] in ("team-anna", "team-bot")
    assert {row["status"] for row in board["rows"]} == {"scored"}
    assert by_team["team-anna"]["corr_mean"] == pytest.approx(
        expected_corr_mean(1, lambda f: f / 10)
    )
    assert by_team["team-ben"]["corr_mean"] == pytest.approx(
        expected_corr_mean(1, lambda f: 1 - f / 10)
    )
    # The bot's last submission before the close counts, not its first.
    assert by_team["team-bot"]["submission"] == last.json()["id"]
    assert by_team["team-bot"]["corr_mean"] == pytest.approx(
        expected_corr_mean(1, lambda f: f / 10 + (f % 2) / 20)
    )
    assert [row["rank"] for row in board["rows"]] == [1, 2, 3, 4]
    assert board["rows"][-1]["team"] == "team-ben"
    # The CSV has the same numbers.
    csv_rows = api(None).get(base + "rounds/1/leaderboard.csv").content.decode()
    assert f"team-anna,model,scored,{by_team['team-anna']['corr_mean']!r}" in csv_rows

    # ---------------------------------------------------------------- round 2
    # anna replaces her model; carl's new model is broken.
    anna.post(base + "models/", {"file": _file(models.model_bytes(th.SQUARED), "model.pkl")})
    carl.post(base + "models/", {"file": _file(models.model_bytes(th.BROKEN), "model.pkl")})
    closes2 = timezone.now() + timedelta(hours=1)
    answer = host.post(
        base + "rounds/",
        {
            "live_features": _file(th.live_features(2), "live.csv"),
            "data_version": "v2",
            "closes_at": closes2.isoformat(),
        },
    )
    assert answer.status_code == 201 and answer.json()["number"] == 2
    wait_for(
        lambda: WebhookDelivery.objects.filter(
            webhook=bot_hook, status="delivered", payload__roundNumber=2
        ).exists(),
        "the bot's round 2 webhook",
    )
    assert bot.get(base + "rounds/current/").json()["number"] == 2
    answer = bot.post(
        base + "rounds/2/submissions/",
        {"file": _file(th.predictions_csv(2, lambda f: f / 10), "p.csv")},
    )
    assert answer.status_code == 201
    wait_for(
        lambda: (
            RoundSubmission.objects.filter(
                round__number=2, source="model", status__in=[Status.PENDING, Status.FAILED]
            ).count()
            == 3
        ),
        "round 2 model runs",
    )
    # The broken model failed without blocking the others, and carl's team is told:
    # on the API (its round submissions) and by a webhook delivery.
    failed = RoundSubmission.objects.get(round__number=2, team=teams["carl"].team)
    assert failed.status == Status.FAILED and failed.failure_kind == "exception"
    mine = carl.get(base + "rounds/2/submissions/").json()
    assert mine[0]["status"] == "failed" and "feature 'g'" in mine[0]["failure_message"]
    told = wait_for(
        lambda: WebhookDelivery.objects.filter(
            webhook=carl_hook, payload__event="model_failed", status="delivered"
        ).first(),
        "carl's failure webhook",
    )
    assert told.payload["roundNumber"] == 2 and "feature 'g'" in told.payload["failureMessage"]
    # anna's run used her new model.
    anna_run = RoundSubmission.objects.get(round__number=2, team=teams["anna"].team)
    assert anna_run.status == Status.PENDING and anna_run.model.file_name == "model.pkl"
    first_model = RoundSubmission.objects.get(round__number=1, team=teams["anna"].team).model
    assert anna_run.model_id != first_model.pk

    _close(phase, 2)
    host.post(base + "rounds/2/targets/", {"file": _file(th.targets(2), "t.csv")})
    wait_for(
        lambda: not RoundSubmission.objects.filter(round__number=2, status=Status.SCORING).exists(),
        "round 2 scoring",
    )
    board = api(None).get(base + "rounds/2/leaderboard/").json()
    by_team = {row["team"]: row for row in board["rows"]}
    assert set(by_team) == {"team-anna", "team-ben", "team-bot"}
    assert by_team["team-anna"]["corr_mean"] == pytest.approx(
        expected_corr_mean(2, lambda f: (f / 10) ** 2)
    )

    # Corrected targets re-score the round.
    answer = host.post(
        base + "rounds/2/targets/", {"file": _file(th.targets(2, shift=0.3), "t.csv")}
    )
    assert answer.json() == {"scoring": 3}
    wait_for(
        lambda: not RoundSubmission.objects.filter(round__number=2, status=Status.SCORING).exists(),
        "round 2 re-scoring",
    )
    assert Round.objects.get(phase=phase, number=2).targets_version == 2
    board = api(None).get(base + "rounds/2/leaderboard/").json()
    by_team = {row["team"]: row for row in board["rows"]}
    rescored = expected_corr_mean(2, lambda f: (f / 10) ** 2, shift=0.3)
    assert by_team["team-anna"]["corr_mean"] == pytest.approx(rescored)
    assert rescored != pytest.approx(expected_corr_mean(2, lambda f: (f / 10) ** 2))

    # Cumulative: the mean over both resolved rounds; carl has only round 1.
    total = api(None).get(base + "leaderboard/").json()
    assert total["rounds"] == [1, 2]
    rows = {row["team"]: row for row in total["rows"]}
    assert rows["team-carl"]["rounds"] == 1 and rows["team-anna"]["rounds"] == 2
    assert rows["team-anna"]["corr_mean"] == pytest.approx(
        (expected_corr_mean(1, lambda f: f / 10) + rescored) / 2
    )
    assert [row["rank"] for row in total["rows"]] == [1, 2, 3, 4]
    assert total["rows"][-1]["team"] == "team-ben"
    csv_text = api(None).get(base + "leaderboard.csv").content.decode()
    assert f"team-anna,2,{rows['team-anna']['corr_mean']!r}" in csv_text


# ---------------------------------------------------------------- a worker killed mid-round

SLOW = """
import time
import pandas as pd

def predict(features):
    time.sleep(3)
    return pd.DataFrame({"prediction": features["f"] / 10.0}, index=features.index)
"""


def test_it_loses_no_model_run_when_a_worker_is_killed_during_a_round(
    rig,  # noqa: F811  (the fixture imported above)
    users,
    host_teams,
):
    challenge = load_approved(th.tournament_bundle(), users, host_teams["alice"])
    participation = participate(users["charlie"], challenge)
    phase = challenge.phases.get()
    upload = _file(models.model_bytes(SLOW), "slow.pkl")
    upload.size = len(upload.getvalue())
    tournament_model_upload(
        user=users["charlie"], phase=phase, participation=participation, upload=upload
    )
    node = f"rounds-{uuid.uuid4().hex[:6]}@%h"
    worker = rig.worker(node)
    round_open(user=users["alice"], phase=phase, live_features=_file(th.live_features(1), "l.csv"))
    run = RoundSubmission.objects.get(round__phase=phase)
    wait_for(
        lambda: RoundSubmission.objects.filter(pk=run.pk, status=Status.PREDICTING).exists(),
        "the model run to start",
        timeout=30,
    )
    time.sleep(0.5)  # inside predict() now
    worker.kill()
    assert RoundSubmission.objects.get(pk=run.pk).status == Status.PREDICTING

    successor = rig.worker(node)  # same node: its start-up recovery runs the model again
    assert "recovered model runs" in successor.log()
    done = wait_for(
        lambda: RoundSubmission.objects.filter(pk=run.pk, status=Status.PENDING).first(),
        "the model run to finish on the successor",
        timeout=60,
    )
    assert (done.attempt, done.lost_count, done.rows) == (2, 1, th.ERAS * th.ROWS_PER_ERA)

"""Tournament rounds without a worker: the bundle key, who may do what, the 409 after the
close, the transitions when targets (re-)arrive, the sweeper, and rounds from a folder.
The end-to-end run with a real worker is tests/workers/test_tournament.py."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import yaml
from django.utils import timezone

from challenges import tournaments as svc
from challenges.bundle import BundleError, load_bundle
from challenges.models import Round, RoundSubmission, Tournament
from challenges.services.webhooks import rounds_open_due
from challenges.tournaments.folders import rounds_from_folder
from challenges.tournaments.round_leaderboards import round_leaderboard
from tests import tournament_helpers as th
from tests.challenges import bundle_factory as bf
from tests.workers.pipeline_helpers import load_approved, participate

pytestmark = pytest.mark.django_db
Status = RoundSubmission.Status


def _file(content: str | bytes, name: str = "f.csv") -> io.BytesIO:
    upload = io.BytesIO(content.encode() if isinstance(content, str) else content)
    upload.name = name
    upload.size = len(upload.getvalue())
    return upload


@pytest.fixture
def sent(monkeypatch):
    """Tasks the services would send to the broker (round work, and new models' runs)."""
    calls = []
    monkeypatch.setattr(
        "challenges.tournaments.core.send",
        lambda task, *args, **_queue: calls.append((task, *args)),
    )
    monkeypatch.setattr(
        "challenges.tournaments.model_runs._send",
        lambda task, model_id, _queue, *args: calls.append((task, model_id, *args)),
    )
    return calls


@pytest.fixture
def challenge(users, host_teams):
    challenge = load_approved(th.tournament_bundle(), users, host_teams["alice"])
    participate(users["charlie"], challenge, team_name="charlies")
    return challenge


@pytest.fixture
def phase(challenge):
    return challenge.phases.get()


def open_round(phase, users, number=1, *, hours=1.0, now=None):
    return svc.round_open(
        user=users["alice"],
        phase=phase,
        live_features=_file(th.live_features(number)),
        data_version=f"v{number}",
        closes_at=(now or timezone.now()) + dt.timedelta(hours=hours),
        now=now,
    )


def charlie_participation(challenge, users):
    return challenge.participations.get(team__memberships__user=users["charlie"])


def test_it_loads_the_tournament_settings_of_a_phase(phase):
    tournament = Tournament.objects.get(phase=phase)
    assert (tournament.cumulative_rounds, tournament.round_hours, tournament.rank_by) == (
        4,
        48.0,
        "corr_mean",
    )


def test_it_rejects_a_tournament_on_a_file_phase_and_a_bad_rank_by():
    config = yaml.safe_load(bf.dump(bf.starter_config()))
    config["challenge_phases"][0]["tournament"] = {"rank_by": "luck", "cumulative_rounds": 0}
    with pytest.raises(BundleError) as raised:
        load_bundle(io.BytesIO(bf.build(config))).close()
    keys = {p.key: p.message for p in raised.value.problems}
    assert "needs submission_type: code" in keys["challenge_phases[0].tournament"]
    assert "corr_mean" in keys["challenge_phases[0].tournament.rank_by"]
    assert "challenge_phases[0].tournament.cumulative_rounds" in keys


def test_it_refuses_ordinary_submissions_to_a_tournament_phase(challenge, api):
    answer = api("charlie").post(
        f"/api/v1/challenges/{challenge.pk}/phases/rounds/submissions/",
        {"file": _file("id,prediction\n", "p.csv")},
        format="multipart",
    )
    assert answer.status_code == 400 and "is a tournament" in answer.json()["detail"]


def test_only_hosts_open_rounds_and_one_round_is_open_at_a_time(challenge, phase, users, api, sent):
    base = f"/api/v1/challenges/{challenge.pk}/phases/rounds/tournament/rounds/"
    outsider = api("bob").post(base, {"live_features": _file(th.live_features(1))})
    assert outsider.status_code == 403
    participant = api("charlie").post(base, {"live_features": _file(th.live_features(1))})
    assert participant.status_code == 403
    open_round(phase, users)
    again = api("alice").post(base, {"live_features": _file(th.live_features(2))})
    assert again.status_code == 400 and "Round 1 is open until" in again.json()["detail"]


def test_the_generic_round_start_and_the_phase_sweeper_leave_tournaments_alone(
    challenge, phase, api
):
    answer = api("alice").post(
        f"/api/v1/challenges/{challenge.pk}/phases/rounds/rounds/", {"data_version": "x"}
    )
    assert answer.status_code == 400 and "tournament" in answer.json()["detail"]
    assert rounds_open_due() == 0
    assert not Round.objects.filter(phase=phase).exists()


def test_it_queues_one_run_of_each_teams_current_model(
    challenge, phase, users, django_user_model, sent, django_capture_on_commit_callbacks
):
    charlie = charlie_participation(challenge, users)
    first = svc.tournament_model_upload(
        user=users["charlie"], phase=phase, participation=charlie, upload=_file(b"m1", "a.pkl")
    )
    svc.tournament_model_upload(
        user=users["charlie"], phase=phase, participation=charlie, upload=_file(b"m2", "b.pkl")
    )
    svc.tournament_model_mark_current(user=users["charlie"], model=first)
    dora = django_user_model.objects.create_user("dora", "dora@example.org", "pw-dora-123")
    participate(dora, challenge, team_name="doras")  # no model: no run
    with django_capture_on_commit_callbacks(execute=True):
        opened = open_round(phase, users)
    (run,) = RoundSubmission.objects.filter(round=opened)
    assert (run.source, run.status, run.model_id) == ("model", Status.QUEUED, first.pk)
    assert sent == [(svc.RUN_TASK, run.pk)]


def test_a_bot_submission_is_checked_at_once_and_refused_after_the_close(
    challenge, phase, users, api, sent
):
    base = f"/api/v1/challenges/{challenge.pk}/phases/rounds/tournament/rounds/1/submissions/"
    opened = open_round(phase, users)
    missing = api("charlie").post(
        base, {"file": _file("id,prediction\n" + f"{th.ids(1)[0]},0.5\n")}
    )
    assert missing.status_code == 400 and "missing for" in missing.json()["detail"]
    nan = api("charlie").post(base, {"file": _file(th.predictions_csv(1, lambda f: float("nan")))})
    assert nan.status_code == 400 and "not finite" in nan.json()["detail"]
    outsider = api("bob").post(base, {"file": _file(th.predictions_csv(1, lambda f: f))})
    assert outsider.status_code == 403
    good = api("charlie").post(base, {"file": _file(th.predictions_csv(1, lambda f: f / 10))})
    assert good.status_code == 201 and good.json()["status"] == "pending"

    closed_at = timezone.now() - dt.timedelta(seconds=1)
    Round.objects.filter(pk=opened.pk).update(closes_at=closed_at)
    late = api("charlie").post(base, {"file": _file(th.predictions_csv(1, lambda f: f / 10))})
    assert late.status_code == 409
    assert late.json()["closes_at"] == closed_at.isoformat()
    assert "Round 1 closed at" in late.json()["detail"]
    current = api("charlie").get(
        f"/api/v1/challenges/{challenge.pk}/phases/rounds/tournament/rounds/current/"
    )
    assert current.status_code == 404


def _pending(opened, challenge, users, content=None) -> RoundSubmission:
    return svc.round_submission_create(
        user=users["charlie"],
        round=opened,
        participation=charlie_participation(challenge, users),
        upload=_file(content or th.predictions_csv(opened.number, lambda f: f / 10)),
    )


def test_targets_score_every_valid_submission_and_new_targets_rescore(
    challenge, phase, users, sent, django_capture_on_commit_callbacks
):
    opened = open_round(phase, users)
    sub = _pending(opened, challenge, users)
    with pytest.raises(svc.TournamentRefused, match="upload its targets after it closes"):
        svc.round_targets_upload(user=users["alice"], round=opened, targets=_file(th.targets(1)))
    with pytest.raises(svc.AccessDenied):
        svc.round_targets_upload(user=users["charlie"], round=opened, targets=_file("x"))
    Round.objects.filter(pk=opened.pk).update(closes_at=timezone.now())
    opened.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        assert svc.round_targets_upload(user=None, round=opened, targets=_file(th.targets(1))) == 1
    sub.refresh_from_db()
    assert (sub.status, sub.targets_version) == (Status.SCORING, 1)
    assert sent[-1] == (svc.SCORE_TASK, sub.pk, 1)
    tournament = Tournament.objects.get(phase=phase)
    assert [r.status for r in round_leaderboard(opened=opened, tournament=tournament)] == [
        "pending"
    ]

    scores = {"corr_mean": 0.5, "corr_std": 0.1, "sharpe": 5.0, "max_drawdown": 0.0}
    # Corrected targets arrive while version 1 is being scored: its score is dropped.
    with django_capture_on_commit_callbacks(execute=True):
        svc.round_targets_upload(user=None, round=opened, targets=_file(th.targets(1, 0.3)))
    assert not svc.round_score_record(
        submission_id=sub.pk, targets_version=1, scores=scores, per_era={"e": 0.5}
    )
    assert svc.round_score_record(
        submission_id=sub.pk, targets_version=2, scores=scores, per_era={"e": 0.5}
    )
    opened.refresh_from_db()
    (row,) = round_leaderboard(opened=opened, tournament=tournament)
    assert (row.rank, row.status, row.metrics["sharpe"]) == (1, "scored", 5.0)


def test_a_model_run_ending_after_the_targets_goes_straight_to_scoring(
    challenge, phase, users, sent, django_capture_on_commit_callbacks
):
    charlie = charlie_participation(challenge, users)
    svc.tournament_model_upload(
        user=users["charlie"], phase=phase, participation=charlie, upload=_file(b"m", "m.pkl")
    )
    opened = open_round(phase, users)
    (run,) = RoundSubmission.objects.filter(round=opened)
    claimed = svc.round_run_claim(run_id=run.pk, worker="w1/1#a", time_limit_s=10)
    assert svc.round_run_claim(run_id=run.pk, worker="w2/1#b", time_limit_s=10) is None
    Round.objects.filter(pk=opened.pk).update(closes_at=timezone.now())
    opened.refresh_from_db()
    svc.round_targets_upload(user=None, round=opened, targets=_file(th.targets(1)))
    with django_capture_on_commit_callbacks(execute=True):
        assert svc.round_run_record(
            run=claimed, record=svc.RunRecord(ok=True, predictions_path="p.csv", rows=24)
        )
    run.refresh_from_db()
    assert (run.status, run.targets_version) == (Status.SCORING, 1)
    assert sent[-1] == (svc.SCORE_TASK, run.pk, 1)


def test_the_sweeper_reruns_a_lost_model_run_once_then_fails_it(
    challenge, phase, users, sent, django_capture_on_commit_callbacks
):
    charlie = charlie_participation(challenge, users)
    svc.tournament_model_upload(
        user=users["charlie"], phase=phase, participation=charlie, upload=_file(b"m", "m.pkl")
    )
    opened = open_round(phase, users)
    (run,) = RoundSubmission.objects.filter(round=opened)
    later = timezone.now() + dt.timedelta(hours=1)
    # Queued, but its message was lost with the broker: sent again (and the model's own
    # run at upload, still pending here, with it).
    report = svc.tournaments_sweep(now=later)
    assert (report.resent, report.models_resent) == (1, 1)
    assert (svc.RUN_TASK, run.pk) in sent
    svc.round_run_claim(run_id=run.pk, worker="gone/1#a", time_limit_s=1)
    with django_capture_on_commit_callbacks(execute=True):
        report = svc.tournaments_sweep(now=later)
    run.refresh_from_db()
    assert report.requeued == 1 and (run.status, run.attempt, run.lost_count) == (
        Status.QUEUED,
        2,
        1,
    )
    svc.round_run_claim(run_id=run.pk, worker="gone/1#b", time_limit_s=1)
    assert svc.round_runs_recover_worker(worker_prefix="gone/").failed == 1
    run.refresh_from_db()
    assert (run.status, run.failure_kind) == (Status.FAILED, "lost")


def test_the_sweeper_resends_a_pending_model_s_run_once_and_one_message_of_it_runs(
    challenge, phase, users, sent, django_capture_on_commit_callbacks
):
    """The upload's message died with the broker: the model stays pending until the
    sweeper sends its run again, once per SWEEPER_REQUEUE_AFTER_S; whichever message of
    the run arrives first runs it, and only a redelivery of that one may start it over."""
    from challenges.models import TournamentModel
    from challenges.tournaments import model_runs

    ModelStatus = TournamentModel.Status
    with django_capture_on_commit_callbacks(execute=True):
        model = svc.tournament_model_upload(
            user=users["charlie"],
            phase=phase,
            participation=charlie_participation(challenge, users),
            upload=_file(b"m", "m.pkl"),
        )
    assert sent == [(model_runs.VALIDATE_TASK, model.pk)]  # the upload's message (lost)
    assert model.enqueued_at is not None
    # A slow queue is not a lost message: not before SWEEPER_REQUEUE_AFTER_S.
    assert svc.tournaments_sweep().models_resent == 0
    later = timezone.now() + dt.timedelta(hours=1)
    assert svc.tournaments_sweep(now=later).models_resent == 1
    task, model_id, token = sent[-1]
    assert (task, model_id, len(token)) == (model_runs.VALIDATE_TASK, model.pk, 32)
    # Sent once per wait: the send moved the model's enqueued_at.
    assert svc.tournaments_sweep(now=later).models_resent == 0
    model.refresh_from_db()
    assert (model.status, model.enqueued_at) == (ModelStatus.PENDING, later)

    # The sweeper's message arrives first and claims the run; the upload's, only slow,
    # finds it taken; the sweeper's delivered again (its worker died) starts it over.
    assert model_runs.model_run_claim(model.pk, token=token)
    assert not model_runs.model_run_claim(model.pk, token="")
    assert model_runs.model_run_claim(model.pk, token=token)
    model.refresh_from_db()
    assert (model.status, model.run_token) == (ModelStatus.RUNNING, token)
    # A running model is not sent again, however long it has run.
    assert svc.tournaments_sweep(now=later + dt.timedelta(hours=1)).models_resent == 0

    # A model of before enqueued_at waits from its upload.
    with django_capture_on_commit_callbacks(execute=True):
        older = svc.tournament_model_upload(
            user=users["charlie"],
            phase=phase,
            participation=charlie_participation(challenge, users),
            upload=_file(b"m", "m.pkl"),
        )
    TournamentModel.objects.filter(pk=older.pk).update(
        enqueued_at=None, uploaded_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert svc.tournaments_sweep().models_resent == 1
    assert sent[-1][:2] == (model_runs.VALIDATE_TASK, older.pk)


def test_the_beat_opens_rounds_from_a_folder_and_uploads_their_targets(
    challenge, phase, users, tmp_path, settings, sent
):
    folder = tmp_path / str(challenge.pk) / "rounds"
    (folder / "round-1").mkdir(parents=True)
    (folder / "round-1" / "live_features.csv").write_text(th.live_features(1))
    (folder / "round-1" / "data_version").write_text("2024-w01\n")
    (folder / "round-2").mkdir()
    (folder / "round-2" / "live_features.csv").write_text(th.live_features(2))
    (folder / "round-2" / "opens_at").write_text("2999-01-01T00:00:00Z")
    settings.TOURNAMENT_ROUNDS_DIR = str(tmp_path)

    now = timezone.now()
    assert rounds_from_folder(now=now) == 1
    opened = Round.objects.get(phase=phase)
    assert (opened.number, opened.data_version) == (1, "2024-w01")
    assert rounds_from_folder(now=now) == 0  # round 1 is still open
    after = opened.closes_at + dt.timedelta(seconds=1)
    (folder / "round-1" / "targets.csv").write_text(th.targets(1))
    assert rounds_from_folder(now=after) == 1  # targets; round 2 waits for its opens_at
    opened.refresh_from_db()
    assert opened.targets_version == 1
    assert rounds_from_folder(now=after) == 0  # the same targets are not uploaded twice


def test_the_management_commands_open_a_round_and_upload_its_targets(
    challenge, phase, tmp_path, sent
):
    from django.core.management import CommandError, call_command

    live = tmp_path / "live.csv"
    live.write_text(th.live_features(1))
    out = io.StringIO()
    call_command(
        "open_round", str(challenge.pk), "rounds", str(live), "--data-version", "w1", stdout=out
    )
    assert out.getvalue().strip() == "1"
    targets = tmp_path / "targets.csv"
    targets.write_text(th.targets(1))
    with pytest.raises(CommandError, match="upload its targets after it closes"):
        call_command("round_targets", str(challenge.pk), "rounds", "1", str(targets))
    Round.objects.filter(phase=phase).update(closes_at=timezone.now())
    out = io.StringIO()
    call_command("round_targets", str(challenge.pk), "rounds", "1", str(targets), stdout=out)
    assert out.getvalue().strip() == "0"
    assert Round.objects.get(phase=phase).targets_version == 1


def test_a_team_may_upload_only_so_many_prediction_files_to_a_round(
    challenge, phase, users, settings, sent
):
    settings.TOURNAMENT_MAX_UPLOADS_PER_ROUND = 2
    opened = open_round(phase, users)
    _pending(opened, challenge, users)
    _pending(opened, challenge, users)
    with pytest.raises(svc.TournamentRefused, match="the most allowed; the last one counts"):
        _pending(opened, challenge, users)


def test_a_banned_team_is_off_the_round_rankings_and_its_model_does_not_run(
    challenge, phase, users, sent
):
    charlie = charlie_participation(challenge, users)
    svc.tournament_model_upload(
        user=users["charlie"], phase=phase, participation=charlie, upload=_file(b"m", "m.pkl")
    )
    opened = open_round(phase, users)
    _pending(opened, challenge, users)
    tournament = Tournament.objects.get(phase=phase)
    assert len(round_leaderboard(opened=opened, tournament=tournament)) == 1
    charlie.is_banned = True
    charlie.save()
    assert round_leaderboard(opened=opened, tournament=tournament) == []
    with pytest.raises(svc.AccessDenied, match="banned"):
        _pending(opened, challenge, users)
    Round.objects.filter(pk=opened.pk).update(closes_at=timezone.now())
    second = open_round(phase, users, number=2)
    assert not RoundSubmission.objects.filter(round=second).exists()


def test_no_round_opens_before_an_admin_approves_the_challenge(challenge, phase, users, sent):
    type(challenge).objects.filter(pk=challenge.pk).update(approved_by_admin=False)
    phase.refresh_from_db()
    with pytest.raises(svc.TournamentRefused, match="not approved yet"):
        open_round(phase, users)


@pytest.mark.parametrize("teams", [2, 12])
def test_the_tournament_leaderboards_take_a_fixed_number_of_queries(
    challenge, phase, users, api, django_user_model, django_assert_max_num_queries, sent, teams
):
    opened = open_round(phase, users)
    for i in range(teams):
        user = django_user_model.objects.create_user(f"t{i}", f"t{i}@example.org", "pw-123456")
        participation = participate(user, challenge, team_name=f"team-{i}")
        svc.round_submission_create(
            user=user,
            round=opened,
            participation=participation,
            upload=_file(th.predictions_csv(1, lambda f: f / 10)),
        )
    Round.objects.filter(pk=opened.pk).update(closes_at=timezone.now())
    opened.refresh_from_db()
    svc.round_targets_upload(user=None, round=opened, targets=_file(th.targets(1)))
    scores = {"corr_mean": 0.1, "corr_std": 0.1, "sharpe": 1.0, "max_drawdown": 0.0}
    for sub in RoundSubmission.objects.filter(round=opened):
        svc.round_score_record(submission_id=sub.pk, targets_version=1, scores=scores, per_era={})
    base = f"/api/v1/challenges/{challenge.pk}/phases/rounds/tournament/"
    client = api("charlie")
    client.get(base + "leaderboard/")  # the token's first use
    with django_assert_max_num_queries(8):
        assert len(client.get(base + "rounds/1/leaderboard/").json()["rows"]) == teams
    with django_assert_max_num_queries(8):
        assert len(client.get(base + "leaderboard/").json()["rows"]) == teams


@pytest.mark.parametrize(
    ("who", "method", "tail", "status"),
    [
        (None, "get", "rounds/", 200),
        (None, "get", "leaderboard/", 200),
        (None, "get", "rounds/1/leaderboard/", 200),
        (None, "get", "rounds/1/live/", 200),
        (None, "post", "rounds/1/submissions/", 401),
        (None, "post", "models/", 401),
        (None, "post", "rounds/1/targets/", 401),
        ("bob", "post", "rounds/1/submissions/", 403),  # not in the challenge
        ("bob", "post", "models/", 403),
        ("bob", "post", "rounds/1/targets/", 403),  # another challenge's host
        ("charlie", "post", "rounds/1/targets/", 403),  # a participant
        ("bob", "get", "rounds/1/submissions/", 200),  # nothing of anyone else's
    ],
)
def test_who_may_do_what_on_the_tournament_api(
    challenge, phase, users, api, sent, who, method, tail, status
):
    open_round(phase, users)
    base = f"/api/v1/challenges/{challenge.pk}/phases/rounds/tournament/"
    data = {"file": _file(th.predictions_csv(1, lambda f: f / 10), "p.csv")}
    answer = getattr(api(who), method)(base + tail, data if method == "post" else None)
    assert answer.status_code == status, answer.content
    if tail == "rounds/1/submissions/" and method == "get":
        assert answer.json() == []

"""Queues per challenge: an admin names a challenge's queue, its submissions (and its live
tournament's work, on `<queue>-rounds`) go there, workers started with `-Q` take only
those, and the ops status shows every queue's depth."""

from __future__ import annotations

import datetime as dt
import io
import types
import uuid

import pytest
from celery import Celery
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.utils import timezone

from challenges import tournaments as tsvc
from challenges.models import Challenge, Round
from challenges.services.queues import queue_depths, rounds_queue
from evalserver.celery import app
from tests import tournament_helpers as th
from tests.workers.pipeline_helpers import GOOD_EVALUATE, load_approved, participate, script_bundle
from tests.workers.pipeline_helpers import submit as api_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """Tasks sent to the broker, with the queue each went to."""
    calls = []
    monkeypatch.setattr(
        app,
        "send_task",
        lambda name, args=None, queue=None, **kw: calls.append((name, args, queue)),
    )
    return calls


@pytest.fixture
def challenge(users, host_teams):
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    return challenge


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Heavy", "not valid"),
        ("heavy queue", "not valid"),
        ("-heavy", "not valid"),
        ("h" * 64, "not valid"),
        ("heavy,light", "not valid"),
        ("heavy-rounds", "ends in '-rounds'"),
    ],
)
def test_it_refuses_a_queue_name_workers_could_not_be_started_with(challenge, name, problem):
    challenge.queue = name
    with pytest.raises(ValidationError) as refused:
        challenge.full_clean()
    assert list(refused.value.message_dict) == ["queue"]
    assert problem in refused.value.message_dict["queue"][0]
    assert repr(name) in refused.value.message_dict["queue"][0]


def test_an_admin_sets_the_queue_in_the_admin_and_a_bad_name_is_a_form_error(users, challenge):
    client = Client()
    client.force_login(users["admin"])
    page = client.get(f"/admin/challenges/challenge/{challenge.pk}/change/")
    assert page.status_code == 200 and b'name="queue"' in page.content

    model_admin = admin.site._registry[Challenge]
    request = RequestFactory().get("/")
    request.user = users["admin"]
    form_class = model_admin.get_form(request, challenge, change=True, fields=["queue"])
    bad = form_class(data={"queue": "GPU queue"}, instance=challenge)
    assert not bad.is_valid()
    assert "is not valid" in bad.errors["queue"][0]
    good = form_class(data={"queue": "gpu-a100"}, instance=challenge)
    assert good.is_valid(), good.errors
    good.save()
    assert Challenge.objects.get(pk=challenge.pk).queue == "gpu-a100"


def test_submissions_go_to_their_challenge_s_queue_or_the_default_one(
    challenge, api, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = api_submit(api("charlie"), challenge, "probe", "1", name="a.txt")
    Challenge.objects.filter(pk=challenge.pk).update(queue="long-runs")
    with django_capture_on_commit_callbacks(execute=True):
        second = api_submit(api("charlie"), challenge, "probe", "2", name="b.txt")
    assert (first.status_code, second.status_code) == (201, 201)
    assert published == [
        ("workers.evaluate_submission", [first.json()["id"]], app.conf.task_default_queue),
        ("workers.evaluate_submission", [second.json()["id"]], "long-runs"),
    ]


def test_a_tournament_s_scoring_goes_to_its_challenge_s_rounds_queue(
    users, host_teams, published, django_capture_on_commit_callbacks, settings
):
    settings.TOURNAMENT_QUEUE = ""
    challenge = load_approved(th.tournament_bundle(), users, host_teams["alice"])
    participation = participate(users["charlie"], challenge)
    Challenge.objects.filter(pk=challenge.pk).update(queue="numerai")
    phase = challenge.phases.get()

    def upload(content: str) -> io.BytesIO:
        stream = io.BytesIO(content.encode())
        stream.name, stream.size = "f.csv", len(content)
        return stream

    opened = tsvc.round_open(
        user=users["alice"],
        phase=phase,
        live_features=upload(th.live_features(1)),
        data_version="v1",
        closes_at=timezone.now() + dt.timedelta(hours=1),
    )
    sub = tsvc.round_submission_create(
        user=users["charlie"],
        round=opened,
        participation=participation,
        upload=upload(th.predictions_csv(1, lambda f: f / 10)),
    )
    Round.objects.filter(pk=opened.pk).update(closes_at=timezone.now())
    opened.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        tsvc.round_targets_upload(user=None, round=opened, targets=upload(th.targets(1)))
    assert published[-1] == (tsvc.SCORE_TASK, [sub.pk, 1], "numerai-rounds")
    # The default queue's twin keeps its old name, or TOURNAMENT_QUEUE's.
    assert rounds_queue("") == f"{app.conf.task_default_queue}-rounds"
    settings.TOURNAMENT_QUEUE = "rounds-elsewhere"
    assert rounds_queue("") == "rounds-elsewhere" and rounds_queue("numerai") == "numerai-rounds"


def test_a_worker_started_with_q_takes_each_queue_s_rounds_twin_too():
    from workers.tournament_tasks import _consume_the_tournament_queue

    worker_app = Celery("probe", set_as_current=False)
    worker_app.conf.task_default_queue = app.conf.task_default_queue
    worker_app.amqp.queues.select([app.conf.task_default_queue, "numerai"])
    _consume_the_tournament_queue(sender=None, instance=types.SimpleNamespace(app=worker_app))
    assert sorted(worker_app.amqp.queues.consume_from) == sorted(
        [
            app.conf.task_default_queue,
            f"{app.conf.task_default_queue}-rounds",
            "numerai",
            "numerai-rounds",
        ]
    )


@pytest.mark.services
def test_the_ops_status_shows_the_depth_of_every_challenge_s_queue(users, challenge, settings, api):
    import redis

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    name = f"ops-{uuid.uuid4().hex[:8]}"
    Challenge.objects.filter(pk=challenge.pk).update(queue=name)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.lpush(name, "m1", "m2", "m3")
        client.lpush(f"{name}\x06\x169", "urgent")  # kombu's list for priority 9
        client.lpush(f"{name}-rounds", "r1")
        status = api("admin").get("/api/v1/ops/status/")
    finally:
        client.delete(name, f"{name}\x06\x169", f"{name}-rounds")
        client.close()
    assert status.status_code == 200
    queues = {q["name"]: q["depth"] for q in status.json()["queues"]}
    assert queues[name] == 4 and queues[f"{name}-rounds"] == 1
    assert app.conf.task_default_queue in queues
    assert status.json()["queue"]["name"] == settings.CELERY_TASK_DEFAULT_QUEUE
    assert api("charlie").get("/api/v1/ops/status/").status_code == 403


def test_queue_depths_count_the_filesystem_broker_s_message_files(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    for i, queue in enumerate(["evalserver", "evalserver", "heavy", "evalserver-rounds"]):
        (tmp_path / f"{1000 + i}_{uuid.uuid4()}.{queue}.msg").write_bytes(b"{}")
    assert queue_depths(["evalserver", "heavy", "light"]) == {
        "evalserver": 2,
        "heavy": 1,
        "light": 0,
    }
    settings.CELERY_BROKER_URL = "amqp://127.0.0.1//"
    assert queue_depths(["evalserver"]) is None


def test_a_script_environment_is_built_by_a_worker_of_the_challenge_s_queue(
    users, host_teams, published, django_capture_on_commit_callbacks
):
    from challenges.services.bundles import challenge_load_bundle
    from challenges.services.challenges import challenge_approve

    bundle = script_bundle(GOOD_EVALUATE, script_files={"requirements.txt": "probe-pkg==1.0\n"})
    challenge = challenge_load_bundle(
        source=io.BytesIO(bundle), user=users["alice"], host_team=host_teams["alice"]
    ).challenge
    Challenge.objects.filter(pk=challenge.pk).update(queue="gpu")
    challenge.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        challenge_approve(challenge=challenge, reviewer=users["admin"])
    # (The hosts' notification of the approval goes to the default queue: any worker.)
    builds = [p for p in published if p[0] != "workers.fan_out_notification_event"]
    assert builds == [("workers.build_environment", [challenge.scripts.get().pk], "gpu")]
    assert ("workers.fan_out_notification_event", None) in [(p[0], p[2]) for p in published]

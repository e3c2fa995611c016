"""Submitting: every check a user can fail, each with a message that says what to do.

These need no worker: the queue is not consumed (`on_commit` callbacks do not run in
a rolled-back test transaction).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from challenges.models import ChallengePhase, Submission
from challenges.services.submissions import (
    EvaluationRecord,
    quota_state,
    submission_claim,
    submission_record_outcome,
    submissions_sweep,
)
from tests.workers.pipeline_helpers import (
    GOOD_EVALUATE,
    load_approved,
    participate,
    script_bundle,
    submit,
)

pytestmark = pytest.mark.django_db

META = [
    {"name": "Model", "type": "text", "required": True, "description": "which model"},
    {"name": "Backbone", "type": "radio", "options": ["resnet", "vit"], "description": "backbone"},
    {"name": "Tricks", "type": "checkbox", "options": ["tta", "ensemble"], "description": "tricks"},
    {"name": "External data", "type": "boolean", "description": "extra data?"},
]


@pytest.fixture
def challenge(users, host_teams):
    challenge = load_approved(
        script_bundle(
            GOOD_EVALUATE,
            submission_meta_attributes=META,
            max_submissions_per_day=3,
            max_concurrent_submissions_allowed=2,
        ),
        users,
        host_teams["alice"],
    )
    participate(users["charlie"], challenge)
    return challenge


def ok_meta(**extra):
    import json

    return {"meta_attributes": json.dumps({"Model": "m1", **extra})}


def test_a_submission_is_accepted_and_stored_under_a_name_we_chose(api, challenge, media_files):
    response = submit(
        api("charlie"), challenge, "probe", "41", name="../../etc/passwd.txt", **ok_meta()
    )
    assert response.status_code == 201, response.content
    submission = Submission.objects.get(pk=response.json()["id"])
    # The name is never a path: Django keeps only its last part; storage uses our own folder.
    assert submission.status == "submitted" and submission.file_name == "passwd.txt"
    assert submission.input_size == 2 and len(submission.input_sha256) == 64
    (stored,) = [p for p in media_files() if "submissions" in p.parts]
    assert ".." not in str(stored) and stored.name.endswith("passwd.txt")
    assert submission.meta_attributes == {"Model": "m1"}


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("weights.exe", b"41", "not an accepted file type; this phase accepts .json, .csv, .txt"),
        ("guess.txt", b"", "file is empty"),
        ("guess.csv", b"a,b\n\x00\x01", "should be text but contains binary data"),
        ("guess.json", b"hello", "does not start like JSON"),
    ],
)
def test_wrong_files_are_refused_by_extension_and_content(api, challenge, name, content, fragment):
    response = submit(api("charlie"), challenge, "probe", content, name=name, **ok_meta())
    assert response.status_code == 400 and fragment in response.content.decode()
    assert "file" in response.json().get("field", response.json())
    assert not Submission.objects.exists()


def test_the_per_phase_size_cap_is_enforced(api, challenge):
    ChallengePhase.objects.filter(challenge=challenge).update(max_submission_size_bytes=10)
    response = submit(api("charlie"), challenge, "probe", "1" * 11, name="guess.txt", **ok_meta())
    assert (
        response.status_code == 400 and "this phase accepts at most 10" in response.json()["detail"]
    )


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ({}, "'Model' is required"),
        ({"Model": "m", "Backbone": "lstm"}, "'Backbone' must be one of resnet, vit"),
        ({"Model": "m", "Tricks": ["tta", "magic"]}, "'Tricks': magic not among tta, ensemble"),
        ({"Model": "m", "External data": "perhaps"}, "'External data' must be true or false"),
        ({"Model": "m", "Colour": "red"}, "'Colour' is not a meta attribute of this phase"),
    ],
)
def test_meta_attributes_are_validated_by_type(api, challenge, meta, fragment):
    import json

    response = submit(
        api("charlie"), challenge, "probe", "41", name="g.txt", meta_attributes=json.dumps(meta)
    )
    assert response.status_code == 400 and fragment in response.json()["detail"], response.json()


def test_valid_meta_attributes_of_every_type_are_kept(api, challenge):
    import json

    meta = {"Model": "m", "Backbone": "vit", "Tricks": ["tta"], "External data": "true"}
    response = submit(
        api("charlie"), challenge, "probe", "41", name="g.txt", meta_attributes=json.dumps(meta)
    )
    assert response.status_code == 201
    stored = Submission.objects.get().meta_attributes
    assert stored == {"Model": "m", "Backbone": "vit", "Tricks": ["tta"], "External data": True}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"is_submission_paused": True}, "paused submissions"),
        ({"end_date": timezone.now() - dt.timedelta(days=1)}, "closed at"),
        ({"start_date": timezone.now() + dt.timedelta(days=1)}, "opens at"),
    ],
)
def test_closed_or_paused_phases_refuse_submissions(api, challenge, change, fragment):
    ChallengePhase.objects.filter(challenge=challenge).update(**change)
    response = submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta())
    assert response.status_code == 400 and fragment in response.json()["detail"]


def test_phases_restricted_to_email_ids_refuse_others(api, challenge, users):
    ChallengePhase.objects.filter(challenge=challenge).update(
        allowed_email_ids=["someone@example.org"]
    )
    response = submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta())
    assert response.status_code == 403 and "invited participants" in response.json()["detail"]
    ChallengePhase.objects.filter(challenge=challenge).update(
        allowed_email_ids=["CHARLIE@example.org"]
    )
    assert (
        submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta()).status_code
        == 201
    )


@pytest.mark.parametrize(("who", "status"), [(None, 401), ("bob", 403), ("dave", 403)])
def test_only_participating_teams_submit(api, challenge, users, django_user_model, who, status):
    if who == "dave":
        users["dave"] = django_user_model.objects.create_user("dave", "dave@example.org", "pw")
    response = submit(api(who), challenge, "probe", "41", name="g.txt", **ok_meta())
    assert response.status_code == status


def test_an_unapproved_challenge_is_not_found_for_participants(api, users, host_teams):
    from challenges.models import Challenge

    challenge = load_approved(
        script_bundle(GOOD_EVALUATE, title="Later"), users, host_teams["alice"]
    )
    participate(users["charlie"], challenge)
    Challenge.objects.filter(pk=challenge.pk).update(approved_by_admin=False, review="rejected")
    assert submit(api("charlie"), challenge, "probe", "41", name="g.txt").status_code == 404


def test_quotas_count_per_day_and_concurrency_and_ignore_failures(api, challenge):
    for _ in range(2):
        assert (
            submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta()).status_code
            == 201
        )
    third = submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta())
    assert third.status_code == 429 and third.json()["quota"] == "concurrent"
    assert "most allowed at once" in third.json()["detail"]
    # Failed and cancelled submissions give their quota back.
    Submission.objects.filter(pk=Submission.objects.order_by("pk").first().pk).update(
        status="failed"
    )
    assert (
        submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta()).status_code
        == 201
    )
    Submission.objects.update(status="finished")
    fourth = submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta())
    assert fourth.status_code == 429 and fourth.json()["quota"] == "per_day"
    assert fourth.headers["Retry-After"].isdigit()
    quota = api("charlie").get(f"/api/v1/challenges/{challenge.pk}/phases/probe/quota/").json()
    per_day = next(q for q in quota["quotas"] if q["quota"] == "per_day")
    assert per_day == {**per_day, "limit": 3, "used": 3, "remaining": 0} and quota["remaining"] == 0


def test_the_daily_quota_resets_at_midnight_utc(challenge, api):
    submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta())
    submission = Submission.objects.get()
    Submission.objects.update(submitted_at=timezone.now() - dt.timedelta(days=1), status="finished")
    states = {s.quota: s for s in quota_state(phase=submission.phase, team_id=submission.team_id)}
    assert states["per_day"].used == 0 and states["total"].used == 1
    assert states["per_day"].resets_at.hour == 0 and states["per_day"].resets_at.tzinfo is not None


def test_a_late_outcome_after_cancel_or_rerun_writes_nothing(api, challenge):
    sid = submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta()).json()["id"]
    claimed = submission_claim(submission_id=sid, worker="w1/1", time_limit_s=60)
    assert claimed is not None
    assert (
        submission_claim(submission_id=sid, worker="w2/2", time_limit_s=60) is None
    )  # nobody else gets it
    api("charlie").post(f"/api/v1/submissions/{sid}/cancel/")
    record = EvaluationRecord(
        ok=True, scores={"main": {"Score": 1.0, "Other": 0.0}}, missing_splits=[]
    )
    assert submission_record_outcome(submission=claimed, record=record) is False
    submission = Submission.objects.get(pk=sid)
    assert submission.status == "cancelled" and not submission.results.exists()


def test_the_sweeper_fails_running_submissions_past_their_deadline(api, challenge):
    sid = submit(api("charlie"), challenge, "probe", "41", name="g.txt", **ok_meta()).json()["id"]
    submission_claim(submission_id=sid, worker="ghost@host/99", time_limit_s=1)
    report = submissions_sweep(now=timezone.now() + dt.timedelta(hours=1))
    submission = Submission.objects.get(pk=sid)
    assert (
        report.failed == 1 and submission.status == "failed" and submission.failure_kind == "lost"
    )
    assert "ghost@host/99" in submission.failure_message


@pytest.mark.django_db(transaction=True)
def test_a_submission_committed_while_the_database_goes_away_is_accepted_with_its_file(
    challenge, api, monkeypatch, settings, tmp_path
):
    """The row is committed; marking it queued right after fails (PostgreSQL stopping).
    The answer is 201, not a 503 that would make the client send it again, and the stored
    file stays: the row still points at it, and the sweeper will send it for evaluation."""
    from django.db import OperationalError

    from challenges.services.submissions import intake

    def database_gone(**kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(intake, "submission_enqueue", database_gone)
    response = submit(api("charlie"), challenge, "probe", "41", name="a.txt", **ok_meta())
    assert response.status_code == 201, response.content
    submission = Submission.objects.get(pk=response.json()["id"])
    assert submission.status == Submission.Status.SUBMITTED
    assert (settings.MEDIA_ROOT / submission.input_file.name).read_bytes() == b"41"

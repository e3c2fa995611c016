"""Finding 2: failed submissions used no quota, and their files stayed: a team could fill
the disk without limit. Now a team's stored bytes per challenge are capped (checked before
the file is stored), failed submissions' files go after a retention (their rows stay),
failed submissions per team, phase and day are capped, and the ops status shows the
space each challenge uses."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from challenges.models import Submission
from challenges.services.submission_storage import submissions_purge_failed_inputs
from tests.workers.pipeline_helpers import (
    GOOD_EVALUATE,
    load_approved,
    participate,
    script_bundle,
    submit,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenge(users, host_teams):
    challenge = load_approved(
        script_bundle(GOOD_EVALUATE, max_concurrent_submissions_allowed=100),
        users,
        host_teams["alice"],
    )
    participate(users["charlie"], challenge)
    return challenge


def _stored(media_files) -> list:
    return [p for p in media_files() if "submissions" in p.parts]


def test_it_refuses_an_upload_past_the_team_storage_cap_before_storing_it(
    challenge, api, settings, media_files
):
    settings.SUBMISSION_TEAM_STORAGE_BYTES = 100
    client = api("charlie")
    assert submit(client, challenge, "probe", "4" * 60).status_code == 201
    refused = submit(client, challenge, "probe", "4" * 60)
    assert refused.status_code == 413
    body = refused.json()
    assert body["storage"] == {"limit": 100, "used": 60, "incoming": 60}
    assert "cap of 100 bytes" in body["detail"] and "stores 60 bytes" in body["detail"]
    assert len(_stored(media_files)) == 1  # the refused file never reached storage
    # Removed files no longer count.
    Submission.objects.update(status=Submission.Status.FAILED, input_purged_at=timezone.now())
    assert submit(client, challenge, "probe", "4" * 60).status_code == 201


def test_it_removes_failed_inputs_after_the_retention_and_keeps_their_rows(
    challenge, api, settings, media_files
):
    settings.FAILED_SUBMISSION_RETENTION_DAYS = 7
    client = api("charlie")
    ids = [submit(client, challenge, "probe", "41").json()["id"] for _ in range(3)]
    now = timezone.now()
    old, recent, finished = ids
    Submission.objects.filter(pk=old).update(
        status="failed", failure_message="bad", finished_at=now - dt.timedelta(days=8)
    )
    Submission.objects.filter(pk=recent).update(
        status="failed", finished_at=now - dt.timedelta(days=6)
    )
    Submission.objects.filter(pk=finished).update(
        status="finished", finished_at=now - dt.timedelta(days=30)
    )
    report = submissions_purge_failed_inputs(now=now)
    assert (report.files, report.bytes) == (1, 2)
    assert len(_stored(media_files)) == 2
    gone = Submission.objects.get(pk=old)
    assert gone.input_purged_at == now and gone.failure_message == "bad"
    assert gone.input_sha256 and gone.file_name  # metadata kept
    detail = api("charlie").get(f"/api/v1/submissions/{old}/").json()
    assert detail["input_purged_at"] and detail["failure_message"] == "bad"
    assert submissions_purge_failed_inputs(now=now).files == 0  # once only
    rerun = api("alice").post(f"/api/v1/submissions/{old}/rerun/")
    assert rerun.status_code == 400 and "was removed" in rerun.json()["detail"]


def test_it_caps_failed_submissions_per_team_phase_and_day(challenge, api, settings):
    settings.SUBMISSION_MAX_FAILED_PER_DAY = 2
    client = api("charlie")
    for _ in range(2):
        sid = submit(client, challenge, "probe", "41").json()["id"]
        Submission.objects.filter(pk=sid).update(status="failed")
    refused = submit(client, challenge, "probe", "41")
    assert refused.status_code == 429 and refused.json()["quota"] == "failed_per_day"
    assert "SUBMISSION_MAX_FAILED_PER_DAY" in refused.json()["detail"]
    assert int(refused["Retry-After"]) >= 1
    quota = client.get(f"/api/v1/challenges/{challenge.pk}/phases/probe/quota/").json()
    assert quota["remaining"] == 0
    # Yesterday's failures do not count today.
    Submission.objects.update(submitted_at=timezone.now() - dt.timedelta(days=1))
    assert submit(client, challenge, "probe", "41").status_code == 201


def test_it_shows_the_space_used_per_challenge_in_the_ops_status(challenge, api):
    client = api("charlie")
    submit(client, challenge, "probe", "41")
    sid = submit(client, challenge, "probe", "4242").json()["id"]
    Submission.objects.filter(pk=sid).update(status="failed")
    body = api("admin").get("/api/v1/ops/status/").json()
    (row,) = [r for r in body["storage"] if r["challenge"] == challenge.pk]
    assert row["submission_bytes"] == 6 and row["submission_files"] == 2
    assert row["failed_submission_bytes"] == 4
    assert api("charlie").get("/api/v1/ops/status/").status_code == 403


def test_it_refuses_a_body_that_cannot_fit_before_parsing_it(challenge, api, settings):
    settings.SUBMISSION_TEAM_STORAGE_BYTES = 100
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    url = f"/api/v1/challenges/{challenge.pk}/phases/probe/submissions/"
    # Not even valid multipart: parsed first, it would answer 400.
    response = api("charlie").generic(
        "POST", url, b"x" * 200_000, content_type="multipart/form-data; boundary=zzz"
    )
    assert response.status_code == 413 and response.json()["storage"]["limit"] == 100

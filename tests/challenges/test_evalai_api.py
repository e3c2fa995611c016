"""EvalAI's REST paths in process: tokens, shapes, errors, access, and the remote queue's
claim, timeout and sweep (the live CLI and remote-worker runs are in tests/e2e)."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from challenges.models import ChallengePhaseSplit, ParticipantTeam, Submission
from challenges.services.remote_evaluation import (
    queue_name,
    remote_message_receive,
    remote_submission_start,
)
from challenges.services.submissions import submission_create, submissions_sweep
from challenges.submission_access import access_submitter
from tests.challenges import bundle_factory as bf
from tests.conftest import ROLES
from tests.workers.pipeline_helpers import (
    GOOD_EVALUATE,
    SCRIPT_CONFIG,
    load_approved,
    participate,
    script_bundle,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer(users):
    def client(name: str | None, keyword: str = "Bearer") -> APIClient:
        c = APIClient()
        if name:
            token, _ = Token.objects.get_or_create(user=users[name])
            c.credentials(HTTP_AUTHORIZATION=f"{keyword} {token.key}")
        return c

    return client


@pytest.fixture
def challenge(users, host_teams):
    return load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])


@pytest.fixture
def remote(users, host_teams):
    config = yaml.safe_load(yaml.safe_dump(SCRIPT_CONFIG))
    config["remote_evaluation"] = True
    config["title"] = "Remote"
    source = bf.zip_bytes(
        {
            "challenge_config.yaml": yaml.safe_dump(config),
            "templates/description.html": "<p>x</p>",
            "annotations/truth.json": "{}",
            "evaluation_script.zip": bf.zip_bytes({"__init__.py": "def evaluate(): pass\n"}),
        }
    )
    return load_approved(source, users, host_teams["alice"])


def upload(content: bytes = b"41", name: str = "guess.txt"):
    f = io.BytesIO(content)
    f.name = name
    return f


def test_it_accepts_bearer_and_token_and_answers_evalais_invalid_token(bearer, challenge):
    url = "/api/participants/participant_team"
    assert bearer("charlie").get(url).status_code == 200
    assert bearer("charlie", keyword="Token").get(url).status_code == 200
    anonymous = bearer(None).get(url)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Bearer"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer nope")
    answer = bad.get(url)
    assert answer.status_code == 401 and answer.json()["detail"] == "Invalid token"


def test_challenge_lists_are_paginated_and_filtered_by_time(bearer, challenge, users, host_teams):
    data = bearer(None).get("/api/challenges/challenge/all/all/all").json()
    assert set(data) == {"count", "next", "previous", "results"}
    [row] = data["results"]
    assert row["id"] == challenge.pk and row["creator"]["team_name"] == "Alice Labs"
    assert row["end_date"].endswith("Z") and "queue" not in row
    assert bearer(None).get("/api/challenges/challenge/past/approved/public").json()["count"] == 0
    assert bearer(None).get("/api/challenges/challenge/present").json()["count"] == 1
    # Unpublished challenges stay with their hosts.
    hidden = load_approved(script_bundle(GOOD_EVALUATE, title="Draft"), users, host_teams["alice"])
    type(hidden).objects.filter(pk=hidden.pk).update(published=False)
    assert bearer("charlie").get("/api/challenges/challenge/all/all/all").json()["count"] == 1
    assert bearer("alice").get("/api/challenges/challenge/all/all/all").json()["count"] == 2
    missing = bearer("charlie").get(f"/api/challenges/challenge/{hidden.pk}/")
    assert missing.status_code == 406 and missing.json()["error"].startswith(
        "Challenge does not exist"
    )


def test_phase_splits_list_host_only_splits_to_hosts_only(bearer, challenge):
    url = f"/api/challenges/{challenge.pk}/challenge_phase_split"
    names = lambda who: sorted(s["dataset_split_name"] for s in bearer(who).get(url).json())  # noqa: E731
    assert names("charlie") == ["Main"]
    assert names("alice") == ["Hidden", "Main"]
    hidden = ChallengePhaseSplit.objects.get(dataset_split__codename="hidden")
    board = bearer("charlie").get(f"/api/jobs/challenge_phase_split/{hidden.pk}/leaderboard/")
    assert board.status_code == 406


def test_teams_create_invite_and_participate(bearer, challenge, users, mailoutbox):
    made = bearer("charlie").post(
        "/api/participants/participant_team", {"team_name": "Crew"}, format="json"
    )
    assert made.status_code == 201 and made.json()["team_name"] == "Crew"
    team_id = made.json()["id"]
    taken = bearer("bob").post(
        "/api/participants/participant_team", {"team_name": "crew"}, format="json"
    )
    assert taken.status_code == 400 and taken.json()["team_name"]
    invited = bearer("charlie").post(
        f"/api/participants/participant_team/{team_id}/invite",
        {"email": "bob@example.org"},
        format="json",
    )
    assert invited.status_code == 202
    # Bob is asked, not enrolled: he is mailed the code and joins by using it.
    (mail,) = mailoutbox
    code = ParticipantTeam.objects.get(pk=team_id).invitation_code
    assert mail.to == ["bob@example.org"] and code in mail.body and "Crew" in mail.subject
    assert bearer("bob").get("/api/participants/participant_team").json()["results"] == []
    joined = bearer("bob", "Token").post(
        "/api/v1/teams/join/", {"invitation_code": code}, format="json"
    )
    assert joined.status_code in (200, 201), joined.json()
    listed = bearer("bob").get("/api/participants/participant_team").json()["results"]
    assert [m["member_name"] for m in listed[0]["members"]] == ["bob", "charlie"]
    # The same answer for a member, an unknown address and a known one; no mail for the
    # first two.
    answers = {
        bearer("charlie")
        .post(f"/api/participants/participant_team/{team_id}/invite", {"email": e}, format="json")
        .content
        for e in ("bob@example.org", "nobody@example.org")
    }
    assert answers == {invited.content} and len(mailoutbox) == 1
    # Only members invite.
    outsider = bearer("alice").post(
        f"/api/participants/participant_team/{team_id}/invite",
        {"email": "admin@example.org"},
        format="json",
    )
    assert outsider.status_code == 406
    url = f"/api/challenges/challenge/{challenge.pk}/participant_team/{team_id}"
    assert bearer("charlie").post(url).status_code == 201
    again = bearer("charlie").post(url)
    assert again.status_code == 400 and again.json()["error"] == "Team already exists"
    mine = bearer("bob").get(f"/api/participants/participant_team/{team_id}/challenge").json()
    assert [c["id"] for c in mine["results"]] == [challenge.pk]


def test_submitting_and_reading_a_submission(bearer, challenge, users):
    phase = challenge.phases.get()
    url = f"/api/jobs/challenge/{challenge.pk}/challenge_phase/{phase.pk}/submission/"
    refused = bearer("charlie").post(url, {"input_file": upload()}, format="multipart")
    assert refused.status_code == 403 and "does not take part" in refused.json()["error"]
    participate(users["charlie"], challenge, "Crew")
    made = bearer("charlie").post(
        url,
        {
            "input_file": upload(),
            "method_name": "m",
            "is_public": "true",
            "submission_metadata": json.dumps([]),
            "status": "submitting",
        },
        format="multipart",
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["status"] == "submitted" and body["participant_team_name"] == "Crew"
    assert body["is_public"] is True and body["submission_result_file"] is None
    # The input link works without a token, and only with its signature.
    link = body["input_file"].split("testserver", 1)[1]
    assert b"".join(APIClient().get(link).streaming_content) == b"41"
    assert APIClient().get(link.replace("/api/jobs/files/", "/api/jobs/files/x")).status_code == 403
    listed = bearer("charlie").get(url).json()
    assert [s["id"] for s in listed["results"]] == [body["id"]]
    assert bearer("bob").get(f"/api/jobs/submission/{body['id']}").status_code == 406


def test_a_non_remote_challenge_has_no_queue(bearer, challenge):
    answer = bearer("alice").get(f"/api/jobs/challenge/queues/{queue_name(challenge)}/")
    assert answer.status_code == 400 and "has no remote-evaluation queue" in answer.json()["error"]


def test_a_claimed_message_comes_back_after_its_timeout_and_a_lost_run_is_swept(
    remote, users, settings
):
    settings.REMOTE_EVALUATION_VISIBILITY_TIMEOUT_S = 60
    phase = remote.phases.get()
    participate(users["charlie"], remote, "Crew")
    submission = submission_create(
        submitter=access_submitter(users["charlie"], phase),
        upload=SimpleUploadedFile("guess.txt", b"41"),
    )
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.QUEUED)
    now = timezone.now()
    first = remote_message_receive(challenge=remote, now=now)
    assert first.submission.pk == submission.pk
    # Invisible while held; visible again once the timeout passed, under a new receipt.
    assert remote_message_receive(challenge=remote, now=now + dt.timedelta(seconds=30)) is None
    later = now + dt.timedelta(seconds=61)
    again = remote_message_receive(challenge=remote, now=later)
    assert again.submission.pk == submission.pk and again.receipt_handle != first.receipt_handle
    # Marked running, then never finished: the sweeper treats it as a lost worker.
    running = remote_submission_start(challenge=remote, submission_id=submission.pk)
    assert running.status == Submission.Status.RUNNING
    report = submissions_sweep(now=timezone.now() + dt.timedelta(hours=1))
    assert report.requeued == 1
    submission.refresh_from_db()
    # Waiting again (queued once the transaction commits): visible on the queue.
    assert submission.status in (Submission.Status.SUBMITTED, Submission.Status.QUEUED)
    assert (submission.attempt, submission.lost_count) == (2, 1)
    # Lost a second time: failed, as a submission that took down two workers.
    remote_message_receive(challenge=remote)
    remote_submission_start(challenge=remote, submission_id=submission.pk)
    report = submissions_sweep(now=timezone.now() + dt.timedelta(hours=1))
    submission.refresh_from_db()
    assert report.failed == 1 and submission.status == Submission.Status.FAILED
    assert submission.failure_kind == "lost"


def test_the_host_page_shows_the_queue_name_of_a_remote_challenge(remote, challenge, users):
    from django.test import Client

    page = Client()
    page.force_login(users["alice"])
    html = page.get(f"/host/challenges/{remote.pk}/").content.decode()
    assert f'<span id="remote-queue">{queue_name(remote)}</span>' in html
    assert "remote-queue" not in page.get(f"/host/challenges/{challenge.pk}/").content.decode()


def test_a_large_upload_joins_its_parts_in_order_under_the_announced_id(bearer, challenge, users):
    phase = challenge.phases.get()
    participate(users["charlie"], challenge, "Crew")
    start = bearer("charlie").post(
        f"/api/jobs/phases/{phase.pk}/get_submission_file_presigned_url/",
        {"status": "submitting", "file_name": "/home/c/guess.txt", "num_file_chunks": 2},
    )
    assert start.status_code == 201, start.json()
    body = start.json()
    urls = [u["url"].split("testserver", 1)[1] for u in body["presigned_urls"]]
    finish = f"/api/jobs/phases/{phase.pk}/finish_submission_file_upload/{body['submission_pk']}/"
    anonymous = APIClient()  # parts go up without a token, as to S3
    second = anonymous.put(urls[1], b"1", content_type="application/octet-stream")
    assert second.status_code == 200 and second["ETag"]
    early = bearer("charlie").post(finish, {"upload_id": body["upload_id"], "parts": "[]"})
    assert early.status_code == 400 and "Part(s) 1 of 2 never arrived" in early.json()["error"]
    anonymous.put(urls[0], b"4", content_type="application/octet-stream")
    done = bearer("charlie").post(finish, {"upload_id": body["upload_id"], "parts": "[]"})
    assert done.status_code == 200, done.json()
    submission = Submission.objects.get(pk=body["submission_pk"])
    assert submission.file_name == "guess.txt" and submission.input_file.read() == b"41"
    # Someone else cannot finish it, nor can a forged upload id.
    other = bearer("bob").post(finish, {"upload_id": body["upload_id"]})
    assert other.status_code in (400, 406)
    forged = anonymous.put(
        urls[0].replace("/uploads/", "/uploads/x"), b"4", content_type="application/octet-stream"
    )
    assert forged.status_code == 400


def test_the_challenge_page_link_of_the_cli_leads_to_the_challenge(challenge):
    from django.test import Client

    answer = Client().get(f"/web/challenges/challenge-page/{challenge.pk}/evaluation")
    assert answer.status_code == 302 and answer["Location"] == f"/challenges/{challenge.pk}/"


# The roles of tests/conftest.py, in the order of ACCESS's columns.
COLUMNS = ["anonymous", "outsider", "participant", "other_team", "host", "other_host", "admin"]
N, F, D = 401, 403, 406  # no token, forbidden, does not exist (EvalAI's 406)
# path template -> status per role, in COLUMNS order.
ACCESS = {
    "GET /api/jobs/submission/{submission}": [N, D, 200, D, 200, D, 200],
    "GET /api/jobs/challenge_phase_split/{hidden}/leaderboard/": [D, D, D, D, 200, D, 200],
    "GET /api/jobs/challenge_phase_split/{public}/leaderboard/": [200] * 7,
    "GET /api/challenges/challenge_host_team/{host_team}/challenge": [N, F, F, F, 200, F, F],
    "GET /api/participants/participant_team/{team}/challenge": [N, F, 200, F, F, F, F],
    "POST /api/participants/participant_team/{team}/invite": [N, D, 202, D, D, D, D],
    "GET /api/jobs/challenge/queues/{queue}/": [N, F, F, F, 200, F, 200],
    "POST /api/jobs/queues/{queue}/": [N, F, F, F, 400, F, 400],
    "PATCH /api/jobs/challenge/{remote}/update_submission/": [N, F, F, F, 400, F, 400],
    "PUT /api/jobs/challenge/{remote}/update_submission/": [N, F, F, F, 400, F, 400],
}


@pytest.fixture
def world(users, challenge, remote, host_teams, django_user_model):
    users["erin"] = django_user_model.objects.create_user("erin", "erin@example.org", "pw")
    users["dave"] = django_user_model.objects.create_user("dave", "dave@example.org", "pw")
    participation = participate(users["charlie"], challenge, "Crew")
    participate(users["dave"], challenge, "Dave Team")
    phase = challenge.phases.get()
    submission = submission_create(
        submitter=access_submitter(users["charlie"], phase),
        upload=SimpleUploadedFile("guess.txt", b"41"),
    )
    return {
        "submission": submission.pk,
        "hidden": ChallengePhaseSplit.objects.get(phase=phase, dataset_split__codename="hidden").pk,
        "public": ChallengePhaseSplit.objects.get(phase=phase, dataset_split__codename="main").pk,
        "host_team": host_teams["alice"].pk,
        "team": participation.team_id,
        "queue": queue_name(remote),
        "remote": remote.pk,
    }


def test_invite_adds_members_at_once_when_the_site_chooses_evalais_way(
    bearer, users, settings, mailoutbox
):
    settings.EVALAI_INVITE_ADDS_MEMBERS = True
    made = bearer("charlie").post(
        "/api/participants/participant_team", {"team_name": "Direct"}, format="json"
    )
    url = f"/api/participants/participant_team/{made.json()['id']}/invite"
    assert (
        bearer("charlie").post(url, {"email": "bob@example.org"}, format="json").status_code == 202
    )
    listed = bearer("bob").get("/api/participants/participant_team").json()["results"]
    assert [m["member_name"] for m in listed[0]["members"]] == ["bob", "charlie"]
    unknown = bearer("charlie").post(url, {"email": "nobody@example.org"}, format="json")
    assert unknown.status_code == 406 and mailoutbox == []


@pytest.mark.parametrize("route", list(ACCESS))
def test_every_evalai_route_answers_each_role_as_the_access_table_says(route, world, bearer, users):
    method, template = route.split(" ")
    path = template.format(**world)
    got = []
    for role in COLUMNS:
        client = bearer(ROLES[role])
        data = {"email": "nobody@example.org"} if "invite" in path else {}
        if "invite" in path and role == "participant":
            data = {"email": "erin@example.org"}
        answer = getattr(client, method.lower())(path, data, format="json")
        got.append(answer.status_code)
        if answer.status_code >= 400:
            assert answer.json().get("error") or answer.json().get("detail"), (role, answer.json())
    assert got == ACCESS[route], dict(zip(COLUMNS, got, strict=True))


def test_list_pages_cost_the_same_queries_for_one_row_or_many(bearer, challenge, users, host_teams):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    phase = challenge.phases.get()
    participate(users["charlie"], challenge, "Crew")
    client = bearer("charlie")
    paths = [
        "/api/challenges/challenge/all/all/all",
        f"/api/challenges/challenge/{challenge.pk}/challenge_phase",
        "/api/participants/participant_team",
        f"/api/jobs/challenge/{challenge.pk}/challenge_phase/{phase.pk}/submission/",
    ]

    def costs() -> list[int]:
        counts = []
        for path in paths:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(path).status_code == 200
            counts.append(len(queries))
        return counts

    submit = lambda: submission_create(  # noqa: E731
        submitter=access_submitter(users["charlie"], phase),
        upload=SimpleUploadedFile("guess.txt", b"41"),
    )
    submit()
    before = costs()
    for n in range(3):
        load_approved(script_bundle(GOOD_EVALUATE, title=f"More {n}"), users, host_teams["alice"])
        submit()
    assert costs() == before


def test_meta_attributes_come_as_the_clis_list_and_are_checked_like_any_others(
    bearer, challenge, users
):
    phase = challenge.phases.get()
    type(phase).objects.filter(pk=phase.pk).update(
        submission_meta_attributes=[
            {"name": "Model", "description": "which", "type": "text", "required": True},
            {"name": "Data", "type": "checkbox", "options": ["a", "b"]},
            {"name": "Extra", "type": "boolean"},
        ]
    )
    participate(users["charlie"], challenge, "Crew")
    shown = bearer("charlie").get(
        f"/api/challenges/challenge/{challenge.pk}/challenge_phase/{phase.pk}"
    )
    assert [a["name"] for a in shown.json()["submission_meta_attributes"]] == [
        "Model",
        "Data",
        "Extra",
    ]
    url = f"/api/jobs/challenge/{challenge.pk}/challenge_phase/{phase.pk}/submission/"

    def send(attributes):
        return bearer("charlie").post(
            url,
            {"input_file": upload(), "submission_metadata": json.dumps(attributes)},
            format="multipart",
        )

    made = send(
        [
            {"name": "Model", "type": "text", "value": "resnet"},
            {"name": "Data", "type": "checkbox", "values": ["a"]},
            {"name": "Extra", "type": "boolean", "value": True},
        ]
    )
    assert made.status_code == 201, made.json()
    stored = Submission.objects.get(pk=made.json()["id"]).meta_attributes
    assert stored == {"Model": "resnet", "Data": ["a"], "Extra": True}
    missing = send([{"name": "Data", "type": "checkbox", "values": ["c"]}])
    assert missing.status_code == 400
    assert "'Model' is required" in missing.json()["error"]


def test_hosts_submit_as_their_host_team_and_list_those_submissions(bearer, challenge):
    phase = challenge.phases.get()
    url = f"/api/jobs/challenge/{challenge.pk}/challenge_phase/{phase.pk}/submission/"
    assert bearer("alice").get(url).status_code == 400  # nothing submitted yet
    made = bearer("alice").post(url, {"input_file": upload()}, format="multipart")
    assert made.status_code == 201 and made.json()["participant_team_name"] == "Alice Labs (hosts)"
    listed = bearer("alice").get(url).json()["results"]
    assert [s["id"] for s in listed] == [made.json()["id"]]


def test_a_submission_over_quota_is_refused_as_evalai_refuses_it(bearer, challenge, users):
    phase = challenge.phases.get()
    type(phase).objects.filter(pk=phase.pk).update(max_submissions_per_day=1)
    participate(users["charlie"], challenge, "Crew")
    url = f"/api/jobs/challenge/{challenge.pk}/challenge_phase/{phase.pk}/submission/"
    assert (
        bearer("charlie").post(url, {"input_file": upload()}, format="multipart").status_code == 201
    )
    over = bearer("charlie").post(url, {"input_file": upload()}, format="multipart")
    assert over.status_code == 403 and int(over["Retry-After"]) > 0
    assert over.json()["error"].startswith("Quota reached: the daily limit of 1")
    assert over.json()["quota"] == "per_day"


def test_a_large_upload_cannot_be_finished_into_another_challenge(
    bearer, challenge, users, host_teams
):
    """The finish call names a phase; the upload's own (signed) phase is the one that
    counts, and a team of another challenge cannot take it there. Refused, the parts go."""
    other = load_approved(script_bundle(GOOD_EVALUATE, title="Other"), users, host_teams["alice"])
    phase, other_phase = challenge.phases.get(), other.phases.get()
    participate(users["charlie"], challenge, "Crew A")
    participate(users["charlie"], other, "Crew B")
    start = bearer("charlie").post(
        f"/api/jobs/phases/{phase.pk}/get_submission_file_presigned_url/",
        {"status": "submitting", "file_name": "guess.txt", "num_file_chunks": 1},
    )
    body = start.json()
    url = body["presigned_urls"][0]["url"].split("testserver", 1)[1]
    APIClient().put(url, b"41", content_type="application/octet-stream")
    finish = (
        f"/api/jobs/phases/{other_phase.pk}/finish_submission_file_upload/{body['submission_pk']}/"
    )
    refused = bearer("charlie").post(finish, {"upload_id": body["upload_id"]})
    assert refused.status_code == 400, refused.json()
    assert "another phase" in refused.json()["error"]
    assert not Submission.objects.filter(pk=body["submission_pk"]).exists()


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("post", "/api/jobs/queues/{queue}/", ["receipt_handle"]),
        ("put", "/api/jobs/challenge/{remote}/update_submission/", "FINISHED"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400_not_a_500(method, path, payload, bearer, remote):
    from challenges.services.remote_evaluation import queue_name

    url = path.format(queue=queue_name(remote), remote=remote.pk)
    answer = getattr(bearer("alice"), method)(url, payload, format="json")
    assert answer.status_code == 400, answer.content
    assert "JSON object" in answer.json()["error"]


def test_a_page_past_any_offset_is_a_400_not_a_500(bearer, challenge):
    split = ChallengePhaseSplit.objects.filter(phase__challenge=challenge).first()
    answer = bearer(None).get(
        f"/api/jobs/challenge_phase_split/{split.pk}/leaderboard/?page=100000000000000000"
    )
    assert answer.status_code == 400, answer.content

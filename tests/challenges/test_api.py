"""The REST API for hosts: tokens, uploads, visibility, and who may do what."""

from __future__ import annotations

import io

import pytest

from challenges.models import Challenge
from challenges.services.bundles import challenge_load_bundle
from challenges.services.challenges import challenge_approve

pytestmark = pytest.mark.django_db


def upload(client, zip_path, **data):
    with open(zip_path, "rb") as fh:
        return client.post("/api/v1/challenges/", {"file": fh, **data}, format="multipart")


def test_a_token_is_issued_for_username_and_password(api, users):
    response = api(None).post(
        "/api/v1/auth/token/", {"username": "alice", "password": "pw-alice-123"}
    )
    assert response.status_code == 200 and len(response.json()["token"]) == 40
    bad = api(None).post("/api/v1/auth/token/", {"username": "alice", "password": "wrong"})
    assert bad.status_code == 400


def test_a_host_uploads_a_bundle_with_a_token(api, host_teams, starter_zips):
    response = upload(api("alice"), starter_zips["tabular_classification"], host_team="Alice Labs")
    assert response.status_code == 201, response.content
    body = response.json()
    challenge = Challenge.objects.get(pk=body["id"])
    assert body["created"] and body["script_version"] == 1 and not body["approved_by_admin"]
    assert challenge.host_team.name == "Alice Labs"


def test_the_same_bundle_again_asks_whether_it_is_a_new_version(api, host_teams, starter_zips):
    first = upload(api("alice"), starter_zips["tabular_classification"]).json()
    again = upload(api("alice"), starter_zips["tabular_classification"])
    assert again.status_code == 409
    body = again.json()
    assert (body["challenge"], body["bundle_url"]) == (
        first["id"],
        f"/api/v1/challenges/{first['id']}/bundle/",
    )
    assert "already has a challenge titled" in body["detail"]
    assert Challenge.objects.count() == 1
    confirmed = upload(api("alice"), starter_zips["tabular_classification"], new_challenge="true")
    assert confirmed.status_code == 201 and Challenge.objects.count() == 2


def test_the_host_team_defaults_to_the_users_only_team(api, host_teams, starter_zips):
    assert upload(api("alice"), starter_zips["numerai_regression"]).status_code == 201


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("charlie", 400), ("bob", 403)],
    ids=["anonymous", "participant-without-host-team", "host-of-another-team"],
)
def test_only_hosts_of_a_team_can_upload_for_it(api, host_teams, starter_zips, who, status):
    team = {"host_team": "Alice Labs"} if who != "charlie" else {}
    response = upload(api(who), starter_zips["tabular_classification"], **team)
    assert response.status_code == status, response.content
    assert Challenge.objects.count() == 0


def test_a_participant_naming_a_team_they_are_not_in_is_refused(api, host_teams, starter_zips):
    response = upload(
        api("charlie"),
        starter_zips["tabular_classification"],
        host_team=str(host_teams["alice"].pk),
    )
    assert response.status_code == 403
    assert "not a member" in response.json()["detail"]


def test_a_broken_bundle_answers_400_with_every_problem(api, host_teams):
    response = api("alice").post(
        "/api/v1/challenges/", {"file": io.BytesIO(b"this is not a zip")}, format="multipart"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] and {"file", "key", "line", "column", "message"} <= set(body["errors"][0])
    assert "nothing was loaded" in body["detail"]


def test_validate_lists_problems_without_loading(api, host_teams, starter_zips):
    with open(starter_zips["tabular_classification"], "rb") as fh:
        good = api("alice").post("/api/v1/challenges/validate/", {"file": fh}, format="multipart")
    assert good.status_code == 200 and good.json()["valid"] is True
    bad = api("alice").post(
        "/api/v1/challenges/validate/", {"file": io.BytesIO(b"PK\x03\x04junk")}, format="multipart"
    )
    assert bad.status_code == 200 and bad.json()["valid"] is False and bad.json()["problems"]
    assert Challenge.objects.count() == 0


@pytest.fixture
def pending_challenge(users, host_teams, starter_zips):
    return challenge_load_bundle(
        source=starter_zips["tabular_classification"],
        user=users["alice"],
        host_team=host_teams["alice"],
    ).challenge


@pytest.mark.parametrize(
    ("who", "sees_pending"),
    [(None, False), ("charlie", False), ("bob", False), ("alice", True), ("admin", True)],
)
def test_unapproved_challenges_are_visible_to_their_hosts_and_admins_only(
    api, pending_challenge, who, sees_pending
):
    listing = api(who).get("/api/v1/challenges/")
    assert listing.status_code == 200
    assert (pending_challenge.pk in [c["id"] for c in listing.json()]) is sees_pending
    detail = api(who).get(f"/api/v1/challenges/{pending_challenge.pk}/")
    assert detail.status_code == (200 if sees_pending else 404)


def test_approved_and_published_challenges_are_public_without_host_only_splits(
    api, pending_challenge, users
):
    challenge_approve(challenge=pending_challenge, reviewer=users["admin"])
    Challenge.objects.filter(pk=pending_challenge.pk).update(published=True)
    body = api(None).get(f"/api/v1/challenges/{pending_challenge.pk}/").json()
    test_phase = next(p for p in body["phases"] if p["codename"] == "test")
    assert [s["dataset_split"] for s in test_phase["splits"]] == ["public"]
    host_view = api("alice").get(f"/api/v1/challenges/{pending_challenge.pk}/").json()
    host_splits = {
        s["dataset_split"]
        for p in host_view["phases"]
        if p["codename"] == "test"
        for s in p["splits"]
    }
    assert host_splits == {"public", "private"}


def test_approved_but_unpublished_challenges_stay_hidden(api, pending_challenge, users):
    challenge_approve(challenge=pending_challenge, reviewer=users["admin"])
    Challenge.objects.filter(pk=pending_challenge.pk).update(published=False)
    assert api("charlie").get(f"/api/v1/challenges/{pending_challenge.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("charlie", 404), ("bob", 404), ("alice", 200), ("admin", 200)],
)
def test_reupload_endpoint_access(api, pending_challenge, starter_zips, who, status):
    with open(starter_zips["tabular_classification"], "rb") as fh:
        response = api(who).post(
            f"/api/v1/challenges/{pending_challenge.pk}/bundle/", {"file": fh}, format="multipart"
        )
    assert response.status_code == status, response.content


def test_host_teams_are_created_and_listed_per_user(api, users):
    created = api("charlie").post("/api/v1/host-teams/", {"name": "Charlie Hosts"}, format="json")
    assert created.status_code == 201
    assert [t["name"] for t in api("charlie").get("/api/v1/host-teams/").json()] == [
        "Charlie Hosts"
    ]
    assert api("alice").get("/api/v1/host-teams/").json() == []
    assert (
        api("bob").post("/api/v1/host-teams/", {"name": "Charlie Hosts"}, format="json").status_code
        == 400
    )


def test_the_openapi_schema_and_docs_are_served(api):
    schema = api(None).get("/api/v1/schema/")
    assert schema.status_code == 200 and b"/api/v1/challenges/" in schema.content
    docs = api(None).get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_a_code_phase_lists_its_runtime_and_file_phases_do_not(
    api, host_teams, users, starter_zips
):
    import platform

    challenge = challenge_load_bundle(
        source=starter_zips["numerai_regression"],
        user=users["alice"],
        host_team=host_teams["alice"],
    ).challenge
    challenge_approve(challenge=challenge, reviewer=users["admin"])
    Challenge.objects.filter(pk=challenge.pk).update(published=True)
    phases = {
        p["codename"]: p
        for p in api(None).get(f"/api/v1/challenges/{challenge.pk}/").json()["phases"]
    }
    code = phases["live_code"]
    assert code["submission_type"] == "code" and code["prediction_range"] == [0.0, 1.0]
    assert code["runtime"]["python"] == platform.python_version()
    names = {p["name"].lower(): p["version"] for p in code["runtime"]["packages"]}
    assert {"pandas", "numpy", "scikit-learn", "cloudpickle", "pyarrow"} <= set(names)
    assert phases["live"]["runtime"] is None
    assert "test_input" not in code and "test_annotation" not in code


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/challenges/1/phases/%00/quota/",
        "/api/v1/challenges/1/phases/dev%00x/submissions/",
        "/api/v1/challenges/1/phases/dev/splits/%00/leaderboard/",
        "/api/v1/challenges/1/phases/dev/data/a%00b.csv",
        "/api/v1/challenges/1/phases/%00/rounds/",
    ],
)
def test_a_nul_in_a_codename_is_not_found_never_a_500(api, users, path):
    assert api("charlie").get(path).status_code == 404

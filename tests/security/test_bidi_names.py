"""Issue 22: names with bidirectional override characters (U+202E) were accepted and shown
as they are. One check (challenges.text_checks) refuses them in team and host team names,
usernames, method names and bundle titles, saying which character and where."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from challenges.bundle import BundleError, load_bundle
from challenges.models import HostTeam, ParticipantTeam, Submission
from challenges.text_checks import BIDI_CONTROLS, bidi_problem
from tests.workers.pipeline_helpers import GOOD_EVALUATE, script_bundle

RLO = "Team\u202egnp.exe"


@pytest.mark.parametrize("char", sorted(BIDI_CONTROLS))
def test_every_bidirectional_control_is_named_with_its_position(char):
    problem = bidi_problem(f"abc{char}def", what="Team name")
    assert problem.startswith(f"Team name contains U+{ord(char):04X} ")
    assert "at position 4" in problem


def test_the_message_reads_as_the_issue_asks():
    assert bidi_problem(RLO, what="Team name").startswith(
        "Team name contains U+202E RIGHT-TO-LEFT OVERRIDE at position 5"
    )
    assert bidi_problem("Équipe ☃ 東京 عربي", what="Team name") is None


@pytest.mark.django_db
def test_team_names_are_refused_over_the_api_evalai_and_the_page(world, api, client_as):
    response = api("charlie").post("/api/v1/teams/", {"name": RLO}, format="json")
    assert response.status_code == 400, response.content
    assert "U+202E RIGHT-TO-LEFT OVERRIDE at position 5" in str(response.json())
    response = api("charlie").post(
        "/api/participants/participant_team", {"team_name": RLO}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "U+202E" in str(response.json())
    page = client_as("participant").post(
        "/teams/", {"action": "create", "create-name": RLO}, follow=True
    )
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in page.content.decode()
    assert not ParticipantTeam.objects.filter(name=RLO).exists()


@pytest.mark.django_db
def test_host_team_names_are_refused(api, client_as, world):
    response = api("alice").post("/api/v1/host-teams/", {"name": RLO}, format="json")
    assert response.status_code == 400 and "U+202E" in str(response.json())
    response = api("alice").post(
        "/api/hosts/create_challenge_host_team", {"team_name": RLO}, format="json"
    )
    assert response.status_code == 400 and "U+202E" in str(response.json())
    page = client_as("host").post("/host/", {"name": RLO})
    assert "U+202E" in page.content.decode()
    assert not HostTeam.objects.filter(name=RLO).exists()


@pytest.mark.django_db
def test_usernames_are_refused_at_sign_up(client):
    page = client.post(
        "/accounts/signup/",
        {
            "username": "ev\u2067il",
            "email": "e@example.org",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
        },
    )
    assert "Username contains U+2067 RIGHT-TO-LEFT ISOLATE at position 3" in page.content.decode()


@pytest.mark.django_db
def test_method_names_are_refused(world, api):
    response = api("charlie").post(
        f"/api/v1/challenges/{world.challenge.pk}/phases/test/submissions/",
        {"file": SimpleUploadedFile("p.csv", b"id,label\n1,1"), "method_name": "ok\u200fname"},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body.get("field") == "method_name"
    assert "Method name contains U+200F RIGHT-TO-LEFT MARK at position 3" in body["detail"]
    assert not Submission.objects.filter(method_name__contains="\u200f").exists()


def test_bundle_titles_are_refused():
    data = script_bundle(GOOD_EVALUATE, title="Ch\u202dallenge")
    with pytest.raises(BundleError) as caught:
        load_bundle(io.BytesIO(data))
    messages = " ".join(str(p.as_dict()) for p in caught.value.errors)
    assert "U+202D LEFT-TO-RIGHT OVERRIDE at position 3" in messages


@pytest.mark.django_db
def test_a_resumable_upload_with_such_a_method_name_is_refused_before_its_bytes(world, api):
    import base64

    fields = {
        "kind": "submission",
        "challenge": str(world.challenge.pk),
        "phase": "test",
        "filename": "p.csv",
        "sha256": "0" * 64,
        "method_name": "a\u202eb",
    }
    header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())
    response = api("charlie").post(
        "/api/v1/uploads/",
        HTTP_UPLOAD_LENGTH="10",
        HTTP_UPLOAD_METADATA=header,
        HTTP_TUS_RESUMABLE="1.0.0",
    )
    assert response.status_code == 400, response.content
    assert "Method name contains U+202E RIGHT-TO-LEFT OVERRIDE at position 2" in str(
        response.json()
    )

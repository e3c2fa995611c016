"""The browser journeys through Django's test client: forms, services, redirects, JSON."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core import mail
from django.test import Client

from challenges.models import Challenge, ChallengeParticipation, ParticipantTeam, Submission
from tests.challenges import bundle_factory as bf

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def upload(name: str, content: bytes) -> io.BytesIO:
    stream = io.BytesIO(content)
    stream.name = name
    return stream


def test_a_new_user_signs_up_makes_a_team_takes_part_and_submits(world, starter_dir):
    client = Client()
    page = client.post(
        "/accounts/signup/",
        {
            "username": "frank",
            "email": "frank@example.org",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )
    assert page.status_code == 302 and page["Location"] == "/teams/"
    page = client.post(
        "/teams/",
        {"action": "create", "create-name": "Frank's Forest", "next": "/challenges/1/#x"},
    )
    assert page.status_code == 302
    team = ParticipantTeam.objects.get(name="Frank's Forest")
    challenge = world.challenge
    refused = client.post(f"/challenges/{challenge.pk}/participate/", {"team": team.pk})
    assert refused.status_code == 302
    assert not ChallengeParticipation.objects.filter(team=team).exists()
    client.post(f"/challenges/{challenge.pk}/participate/", {"team": team.pk, "accept_terms": "on"})
    assert ChallengeParticipation.objects.filter(team=team, challenge=challenge).exists()

    form = client.get(f"/challenges/{challenge.pk}/phases/dev/submit/").content.decode()
    assert "<strong>3</strong> submission(s) left" in form  # 3 at once is the tightest
    assert 'name="meta_1"' in form and "Tree ensemble" in form
    sample = (starter_dir / "tabular_classification" / "sample_submission_dev.csv").read_bytes()
    answer = client.post(
        f"/challenges/{challenge.pk}/phases/dev/submit/",
        {
            "file": upload("preds.csv", sample),
            "method_name": "forest",
            "meta_0": "500 trees",
            "meta_1": "Tree ensemble",
            "is_public": "on",
        },
        **JSON,
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["ok"] and "data-live" in body["html"]
    submission = Submission.objects.get(team=team)
    assert submission.meta_attributes == {
        "ModelSummary": "500 trees",
        "ModelFamily": "Tree ensemble",
    }
    assert submission.is_public and submission.method_name == "forest"
    assert f'data-submission="{submission.pk}"' in body["html"]
    listing = client.get(f"/challenges/{challenge.pk}/submissions/").content.decode()
    assert "preds.csv" in listing and "data-live" in listing


def test_a_refused_submission_says_why_in_the_form(world, client_as):
    client = client_as("participant")
    url = f"/challenges/{world.challenge.pk}/phases/dev/submit/"
    page = client.post(url, {"file": upload("preds.txt", b"id,label\n1,a\n")}, **JSON)
    assert page.status_code == 400
    assert "not an accepted file type" in page.json()["html"]
    page = client.post(url, {"file": upload("p.csv", b"id\n1\n"), "meta_1": "Quantum"})
    assert page.status_code == 200 and b"Select a valid choice" in page.content
    assert not Submission.objects.filter(file_name="p.csv").exists()


def test_the_quota_is_shown_and_a_spent_quota_disables_the_button(world, client_as):
    test = world.challenge.phases.get(codename="test")
    test.max_submissions_per_day = 1
    test.save()
    page = client_as("participant").get(f"/challenges/{world.challenge.pk}/phases/test/submit/")
    text = page.content.decode()
    assert "<strong>0</strong> submission(s) left" in text
    assert re.search(r"<button type=\"submit\" disabled>", text)


def test_a_bad_zip_lists_every_problem_with_file_key_and_line(users, host_teams, client_as):
    def break_it(config):
        config["challenge_phases"][1]["codename"] = config["challenge_phases"][0]["codename"]
        del config["end_date"]

    client = client_as("host")
    bad = bf.with_config(break_it)
    page = client.post(
        "/host/upload/", {"file": upload("bad.zip", bad), "host_team": host_teams["alice"].pk}
    )
    assert page.status_code == 400
    text = page.content.decode()
    assert "challenge_phases[1].codename" in text and "end_date" in text
    assert text.count('class="problem error"') >= 2
    assert not Challenge.objects.exists()

    yaml_error = bf.build("title: [unclosed\n")
    answer = client.post(
        "/host/upload/",
        {"file": upload("bad.zip", yaml_error), "host_team": host_teams["alice"].pk},
        **JSON,
    )
    assert answer.status_code == 400
    html = answer.json()["html"]
    assert "challenge_config.yaml" in html and re.search(r"<td>\d+:\d+</td>", html)


def test_a_good_zip_creates_a_pending_challenge_and_a_reupload_a_new_script(
    users, host_teams, client_as, starter_zips
):
    client = client_as("host")
    zipped = starter_zips["tabular_classification"].read_bytes()
    answer = client.post(
        "/host/upload/",
        {"file": upload("c.zip", zipped), "host_team": host_teams["alice"].pk},
        **JSON,
    )
    assert answer.status_code == 200
    challenge = Challenge.objects.get()
    assert answer.json() == {"ok": True, "redirect": f"/host/challenges/{challenge.pk}/"}
    assert not challenge.approved_by_admin
    dashboard = client.get("/host/").content.decode()
    assert challenge.title in dashboard and "Pending review" in dashboard

    # The same zip again: asked whether it is a new version, nothing made until confirmed.
    again = client.post(
        "/host/upload/", {"file": upload("c.zip", zipped), "host_team": host_teams["alice"].pk}
    )
    assert again.status_code == 409 and Challenge.objects.count() == 1
    assert f'href="/host/challenges/{challenge.pk}/#reupload"' in again.content.decode()
    confirmed = client.post(
        "/host/upload/",
        {
            "file": upload("c.zip", zipped),
            "host_team": host_teams["alice"].pk,
            "new_challenge": "on",
        },
        **JSON,
    )
    assert confirmed.status_code == 200 and Challenge.objects.count() == 2
    Challenge.objects.exclude(pk=challenge.pk).delete()

    changed = bf.zip_bytes(
        {
            **{n: z for n, z in _entries(zipped).items() if n != "evaluation_script.zip"},
            "evaluation_script.zip": bf.zip_bytes(bf.script_files()),
        }
    )
    page = client.post(f"/host/challenges/{challenge.pk}/", {"file": upload("c.zip", changed)})
    assert page.status_code == 302
    assert challenge.scripts.count() == 2
    other = client_as("other_host").post(
        f"/host/challenges/{challenge.pk}/", {"file": upload("c.zip", changed)}
    )
    assert other.status_code == 404  # pending: not even named to another host


def _entries(data: bytes) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def test_a_user_without_a_host_team_is_asked_to_create_one(world, client_as):
    client = client_as("outsider")
    assert client.get("/host/upload/")["Location"] == "/host/"
    page = client.post("/host/", {"name": "Erin Institute"})
    assert page["Location"] == "/host/upload/"
    assert client.get("/host/upload/").status_code == 200
    again = client_as("participant").post("/host/", {"name": "Erin Institute"})
    assert again.status_code == 200 and b"exists" in again.content


def test_host_filters_submissions_and_exports_them_as_csv(world, client_as):
    client = client_as("host")
    url = f"/host/challenges/{world.challenge.pk}/submissions/"
    page = client.get(url, {"team": "dave"}).content.decode()
    assert "Dave Team" in page and "Charlie Team" not in page
    page = client.get(url, {"status": "running"}).content.decode()
    assert "running.csv" not in page or "Charlie Team" in page
    assert "Dave Team" not in page
    ParticipantTeam.objects.filter(pk=world.dave_team.pk).update(name="=HYPERLINK(1)")
    csv = client.get(url, {"format": "csv", "phase": "test"})
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("id,phase,team,status")
    assert len(lines) == 3 and "'=HYPERLINK(1)" in csv.content.decode()


def test_host_reruns_and_rescores_participant_cancels(world, client_as):
    host = client_as("host")
    host.post(f"/submissions/{world.charlie_sub.pk}/rerun/")
    world.charlie_sub.refresh_from_db()
    assert (
        world.charlie_sub.status == Submission.Status.SUBMITTED and world.charlie_sub.attempt == 2
    )
    answer = host.post(f"/host/challenges/{world.challenge.pk}/phases/test/rescore/", follow=True)
    assert b"1 submission(s) of Test Phase queued again" in answer.content
    charlie = client_as("participant")
    charlie.post(f"/submissions/{world.charlie_running.pk}/cancel/")
    world.charlie_running.refresh_from_db()
    assert world.charlie_running.status == Submission.Status.CANCELLED
    again = charlie.post(f"/submissions/{world.charlie_running.pk}/cancel/", follow=True)
    assert b"has already ended" in again.content


def test_joining_a_team_by_code(world, client_as):
    client = client_as("outsider")
    page = client.post(
        "/teams/", {"action": "join", "join-invitation_code": world.dave_team.invitation_code}
    )
    assert page.status_code == 302
    assert world.dave_team.memberships.filter(user__username="erin").exists()
    page = client.post("/teams/", {"action": "join", "join-invitation_code": "nope"})
    assert b"No team has this invitation code" in page.content


def test_password_reset_sends_a_link_that_sets_a_new_password(world, settings):
    client = Client()
    page = client.post("/accounts/password-reset/", {"email": "charlie@example.org"})
    assert page["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+/)", mail.outbox[0].body)[1]
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "brand-new-secret-77", "new_password2": "brand-new-secret-77"},
    )
    assert done["Location"] == "/accounts/reset/done/"
    assert Client().login(username="charlie", password="brand-new-secret-77")


def test_the_console_email_backend_is_the_default():
    from evalserver import settings as project_settings

    assert project_settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"


def test_the_submission_json_api_drives_the_live_status(world, client_as):
    """app.js polls this endpoint with the session cookie; it must answer without a token."""
    data = json.loads(
        client_as("participant").get(f"/api/v1/submissions/{world.charlie_sub.pk}/").content
    )
    assert data["status"] == "finished"
    assert {r["split"] for r in data["results"]} == {"public"}


def test_the_challenge_page_links_the_public_data_for_teams_that_take_part(world, client_as):
    url = f"/challenges/{world.challenge.pk}/"
    link = f"/api/v1/challenges/{world.challenge.pk}/phases/dev/data/train.csv"
    page = client_as("participant").get(url).content.decode()
    assert link in page
    assert client_as("participant").get(link).status_code == 200
    outsider = client_as("outsider").get(url).content.decode()
    assert link not in outsider and "for teams that take part" in outsider


def test_members_rotate_the_code_and_cannot_leave_during_a_challenge(world, client_as):
    client = client_as("participant")
    old = world.charlie_team.invitation_code
    client.post("/teams/", {"action": "rotate", "team": world.charlie_team.pk})
    world.charlie_team.refresh_from_db()
    assert world.charlie_team.invitation_code != old
    page = client.post("/teams/", {"action": "leave", "team": world.charlie_team.pk}, follow=True)
    assert b"cannot leave until the challenge ends" in page.content
    other = client.post("/teams/", {"action": "rotate", "team": world.dave_team.pk}, follow=True)
    assert b"You are not a member of that team." in other.content


def test_a_host_submits_a_baseline_as_the_hosts_team(world, client_as, starter_dir):
    client = client_as("host")
    url = f"/challenges/{world.challenge.pk}/phases/dev/submit/"
    form = client.get(url).content.decode()
    assert "without quotas" in form and 'name="is_baseline"' in form
    sample = (starter_dir / "tabular_classification" / "sample_submission_dev.csv").read_bytes()
    answer = client.post(
        url, {"file": upload("base.csv", sample), "is_baseline": "on", "method_name": "majority"}
    )
    assert answer.status_code == 302
    baseline = Submission.objects.get(file_name="base.csv")
    assert baseline.is_baseline and baseline.created_by.username == "alice"
    assert ChallengeParticipation.objects.get(team=baseline.team).is_host_team
    # A participant cannot make a baseline by sending the field.
    client_as("participant").post(url, {"file": upload("sneaky.csv", sample), "is_baseline": "on"})
    assert not Submission.objects.get(file_name="sneaky.csv").is_baseline

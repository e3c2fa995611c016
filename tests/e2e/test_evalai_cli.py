"""EvalAI's own `evalai` CLI (1.3.18, unchanged) against a live evalserver: gunicorn, a
real Celery worker, PostgreSQL and Redis. Assertions are on what the CLI prints."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from rest_framework.authtoken.models import Token

from challenges.models import (
    Challenge,
    ChallengeParticipation,
    ChallengePhaseSplit,
    ParticipantTeam,
    Submission,
)
from challenges.services.participation import participant_team_create
from tests.evalai_cli import EvalAICLI, ensure_evalai_venv
from tests.workers.pipeline_helpers import GOOD_EVALUATE, load_approved, script_bundle, wait_final

pytestmark = [pytest.mark.services, pytest.mark.e2e]


@pytest.fixture(scope="session")
def evalai_executable():
    return ensure_evalai_venv()


@pytest.fixture
def evalai(evalai_executable, web_server, tmp_path):
    def as_user(user) -> EvalAICLI:
        home = tmp_path / f"home-{user.username}"
        home.mkdir()
        cli = EvalAICLI(evalai_executable, home)
        assert f"{web_server.url} is set as the host url." in cli("host", "-sh", web_server.url)
        token, _ = Token.objects.get_or_create(user=user)
        assert "Authentication token is successfully set." in cli("set-token", token.key)
        return cli

    as_user.url = web_server.url
    return as_user


def rows_of(table: str, needle: str) -> list[str]:
    return [line for line in table.splitlines() if needle in line]


def test_the_evalai_cli_takes_a_participant_from_challenge_list_to_leaderboard(
    pipeline, evalai, users, host_teams, tmp_path
):
    challenge = load_approved(
        script_bundle(GOOD_EVALUATE, title="Answer Finding"), users, host_teams["alice"]
    )
    phase = challenge.phases.get()
    public = ChallengePhaseSplit.objects.get(phase=phase, dataset_split__codename="main")
    hidden = ChallengePhaseSplit.objects.get(phase=phase, dataset_split__codename="hidden")
    charlie = evalai(users["charlie"])

    listed = charlie("challenges")
    [row] = rows_of(listed, "Answer Finding")
    assert str(challenge.pk) in row and "Alice Labs" in row

    details = charlie("challenge", str(challenge.pk))
    assert "Start Date" in details and "Terms and Conditions" in details

    phases = charlie("challenge", str(challenge.pk), "phases")
    [row] = rows_of(phases, "Probe")
    assert re.search(rf"\b{phase.pk}\b", row) and re.search(rf"\b{challenge.pk}\b", row)

    detail = charlie("challenge", str(challenge.pk), "phase", str(phase.pk))
    assert f"Phase ID: {phase.pk}" in detail
    assert "Code Name : probe" in detail and "Maximum Submissions per day : 1000" in detail

    splits = charlie("challenge", str(challenge.pk), "phase", str(phase.pk), "splits")
    [row] = rows_of(splits, "Main")
    assert re.search(rf"\b{public.pk}\b", row) and "Probe" in row
    assert "Hidden" not in splits  # host-only split

    created = charlie("teams", "create", "participant", input="Charlie Crew\ny\nn\n")
    assert "Your participant team Charlie Crew was successfully created." in created
    team = ParticipantTeam.objects.get(name="Charlie Crew")
    teams = charlie("teams", "--participant")
    [row] = rows_of(teams, "Charlie Crew")
    assert str(team.pk) in row and "charlie" in row

    joined = charlie("challenge", str(challenge.pk), "participate", str(team.pk), input="y\n")
    assert f"Your team id {team.pk} is now participating in this challenge." in joined
    again = charlie(
        "challenge", str(challenge.pk), "participate", str(team.pk), input="y\n", check=False
    )
    assert "Error: Team already exists" in again

    mine = charlie("challenges", "--participant")
    assert "Participated Challenges" in mine and "Answer Finding" in mine

    answer = tmp_path / "answer.txt"
    answer.write_text("42\n")
    submitted = charlie(
        "challenge",
        str(challenge.pk),
        "phase",
        str(phase.pk),
        "submit",
        "--file",
        str(answer),
        input="y\nGuess forty-two\nThe answer\n\n\n",
    )
    found = re.search(r"with the ID (\d+) is successfully submitted", submitted)
    assert found, submitted
    submission_id = int(found.group(1))
    [done] = wait_final([submission_id])
    assert done.status == Submission.Status.FINISHED, done.failure_message
    assert done.method_name == "Guess forty-two" and done.team_id == team.pk

    shown = charlie("submission", str(submission_id))
    assert f"Submission ID: {submission_id}" in shown
    assert "Submission Status : finished" in shown and "Charlie Crew" in shown

    result = charlie("submission", str(submission_id), "result")
    assert '"main"' in result and '"Score": 1.0' in result
    assert "hidden" not in result  # scores of a host-only split stay with the hosts

    listing = charlie("challenge", str(challenge.pk), "phase", str(phase.pk), "submissions")
    [row] = rows_of(listing, "Charlie Crew")
    # The CLI fits its table in 80 columns: a long id narrows the method name's column.
    assert str(submission_id) in row and "finished" in row and "Guess forty" in row

    board = charlie("challenge", str(challenge.pk), "leaderboard", str(public.pk))
    assert "Score" in board and "Other" in board
    [row] = rows_of(board, "Charlie Crew")
    assert re.search(r"\b1\b", row) and "1.0" in row and "42.0" in row

    refused = charlie("challenge", str(challenge.pk), "leaderboard", str(hidden.pk), check=False)
    assert "Challenge Phase Split does not exist" in refused

    # `--large`: EvalAI's presigned multipart upload, here onto our own storage.
    big = tmp_path / "big-answer.txt"
    big.write_text("40\n")
    uploaded = charlie(
        "challenge",
        str(challenge.pk),
        "phase",
        str(phase.pk),
        "submit",
        "--file",
        str(big),
        "--large",
        input="n\n",
    )
    found = re.search(r"with the id (\d+) is successfully submitted for evaluation", uploaded)
    assert found, uploaded
    [large] = wait_final([int(found.group(1))])
    assert large.status == Submission.Status.FINISHED and large.file_name == "big-answer.txt"
    assert "Submission Status : finished" in charlie("submission", str(large.pk))


def test_the_evalai_cli_signs_in_lists_for_hosts_and_shows_refusals(
    pipeline, evalai, evalai_executable, users, host_teams, tmp_path, settings
):
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    phase = challenge.phases.get()

    alice = evalai(users["alice"])
    hosted = alice("challenges", "--host")
    assert "Hosted Challenges" in hosted
    [row] = rows_of(hosted, "Pipeline probe")
    assert "Alice Labs" in row
    teams = alice("teams", "--host")
    [row] = rows_of(teams, "Alice Labs")
    assert str(host_teams["alice"].pk) in row and "alice" in row
    assert "Sorry, no challenges found." in alice("challenges", "past")
    assert "Sorry, no challenges found." in alice("challenges", "future")
    assert "Pipeline probe" in alice("challenges", "ongoing")
    as_json = alice("challenge", str(challenge.pk), "phase", str(phase.pk), "--json")
    assert '"codename": "probe"' in as_json and f'"challenge": {challenge.pk}' in as_json

    # `evalai login`: username and password for a token, through our token view.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    users["charlie"].set_password("pw-charlie-123")
    users["charlie"].save()
    fresh = EvalAICLI(evalai_executable, tmp_path / "home-login")
    fresh.home.mkdir()
    fresh("host", "-sh", evalai.url)
    assert "Logged in successfully!" in fresh("login", input="charlie\npw-charlie-123\n")
    assert "Unable to log in" in fresh("login", input="charlie\nwrong\n", check=False)
    charlie = fresh
    wrong = tmp_path / "answer.exe"
    wrong.write_text("42")
    refused = charlie(
        "challenge",
        str(challenge.pk),
        "phase",
        str(phase.pk),
        "submit",
        "--file",
        str(wrong),
        input="n\n",
        check=False,
    )
    assert "Your team does not take part in this challenge" in refused

    charlie("set-token", "not-a-token")
    bad = charlie("challenges", "--participant", check=False)
    assert "The authentication token you are using isn't valid." in bad


def test_the_evalai_cli_cannot_take_part_after_the_entry_deadline(
    pipeline, evalai, users, host_teams
):
    challenge = load_approved(
        script_bundle(GOOD_EVALUATE, title="Closed Entry"), users, host_teams["alice"]
    )
    Challenge.objects.filter(pk=challenge.pk).update(
        entry_deadline=dt.datetime(2024, 5, 6, 7, 8, tzinfo=dt.UTC)
    )
    team = participant_team_create(name="Too Late", creator=users["charlie"])
    charlie = evalai(users["charlie"])
    refused = charlie(
        "challenge", str(challenge.pk), "participate", str(team.pk), input="y\n", check=False
    )
    assert "entry deadline of 'Closed Entry' passed on 2024-05-06 07:08 UTC" in refused
    assert "is now participating" not in refused
    assert not ChallengeParticipation.objects.filter(team=team).exists()

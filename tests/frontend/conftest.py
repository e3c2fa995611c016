"""A small world for page tests, with the shared cast and roles (tests/conftest.py): dave's
team is "Dave Team"; he must not see Charlie's submissions or logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from challenges.models import (
    Challenge,
    ChallengeParticipation,
    ChallengePhaseSplit,
    ParticipantTeam,
    ParticipantTeamMember,
    Submission,
    SubmissionResult,
)
from challenges.services.bundles import challenge_load_bundle
from challenges.services.challenges import challenge_approve
from challenges.services.leaderboard_refresh import leaderboard_refresh_team
from tests.conftest import ROLES


@dataclass
class World:
    challenge: Challenge
    pending: Challenge
    charlie_team: ParticipantTeam
    dave_team: ParticipantTeam
    charlie_sub: Submission
    dave_sub: Submission
    charlie_running: Submission


def _team(user, name: str, challenge: Challenge) -> ParticipantTeam:
    team = ParticipantTeam.objects.create(name=name, created_by=user)
    ParticipantTeamMember.objects.create(team=team, user=user)
    ChallengeParticipation.objects.create(challenge=challenge, team=team, accepted_terms_by=user)
    return team


def _finished(phase, team, user, *, scores: dict[str, dict], stdout: str, **fields) -> Submission:
    submission = Submission.objects.create(
        phase=phase,
        team=team,
        created_by=user,
        input_file="submissions/x.csv",
        file_name="predictions.csv",
        input_sha256="0" * 64,
        input_size=10,
        status=Submission.Status.FINISHED,
        stdout=stdout,
        stderr=f"stderr of {team.name}",
        is_public=True,
        **fields,
    )
    for codename, values in scores.items():
        SubmissionResult.objects.create(
            submission=submission,
            phase_split=ChallengePhaseSplit.objects.get(
                phase=phase, dataset_split__codename=codename
            ),
            attempt=1,
            scores=values,
        )
    # What submission_record_outcome does after writing results.
    leaderboard_refresh_team(phase=phase, team_id=team.pk)
    return submission


@pytest.fixture
def world(users, host_teams, starter_zips, django_user_model) -> World:
    make = django_user_model.objects.create_user
    users["dave"] = make("dave", "dave@example.org", "pw-dave-123")
    users["erin"] = make("erin", "erin@example.org", "pw-erin-123")
    challenge = challenge_load_bundle(
        source=starter_zips["tabular_classification"],
        user=users["alice"],
        host_team=host_teams["alice"],
    ).challenge
    challenge_approve(challenge=challenge, reviewer=users["admin"])
    pending = challenge_load_bundle(
        source=starter_zips["numerai_regression"],
        user=users["alice"],
        host_team=host_teams["alice"],
    ).challenge
    Challenge.objects.update(published=True)
    challenge.refresh_from_db()
    charlie_team = _team(users["charlie"], "Charlie Team", challenge)
    dave_team = _team(users["dave"], "Dave Team", challenge)
    test = challenge.phases.get(codename="test")
    charlie_sub = _finished(
        test,
        charlie_team,
        users["charlie"],
        scores={
            "public": {"Accuracy": 0.81, "Macro-F1": 0.8},
            "private": {"Accuracy": 0.7777, "Macro-F1": 0.7666},
        },
        stdout="charlie-secret-stdout",
    )
    dave_sub = _finished(
        test,
        dave_team,
        users["dave"],
        scores={
            "public": {"Accuracy": 0.91, "Macro-F1": 0.6},
            "private": {"Accuracy": 0.5555, "Macro-F1": 0.5444},
        },
        stdout="dave-secret-stdout",
    )
    charlie_running = Submission.objects.create(
        phase=challenge.phases.get(codename="dev"),
        team=charlie_team,
        created_by=users["charlie"],
        input_file="submissions/y.csv",
        file_name="running.csv",
        input_sha256="1" * 64,
        input_size=10,
        status=Submission.Status.RUNNING,
    )
    return World(
        challenge, pending, charlie_team, dave_team, charlie_sub, dave_sub, charlie_running
    )


@pytest.fixture
def client_as(users):
    """client_as("participant") is a Client logged in as that role's user."""

    def make(role: str) -> Client:
        client = Client()
        name = ROLES.get(role, role)
        if name:
            client.force_login(users[name])
        return client

    return make

"""A CodaLab bundle's detailed_results.html on the submission page: shown, sanitised."""

from __future__ import annotations

import io

import pytest

from challenges.services.bundles import challenge_load_bundle
from tests.challenges.codalab_factory import v1_bundle
from tests.frontend.conftest import _finished, _team

pytestmark = pytest.mark.django_db


def test_detailed_results_are_shown_without_their_scripts(client, users, host_teams):
    challenge = challenge_load_bundle(
        source=io.BytesIO(v1_bundle()), user=users["alice"], host_team=host_teams["alice"]
    ).challenge
    phase = challenge.phases.get(codename="development")
    team = _team(users["charlie"], "Charlie's", challenge)
    submission = _finished(
        phase,
        team,
        users["charlie"],
        scores={"results": {"Accuracy": 0.75, "Errors": 1.0}},
        stdout="scored 3",
        submission_result={
            "scores": {"results": {"accuracy": 0.75}},
            "detailed_results": {
                "results": '<p>3 of 4 right</p><script>alert(1)</script><img src=x onerror="alert(2)">'
            },
        },
    )
    client.force_login(users["charlie"])
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert 'data-detailed-results="results"' in page
    assert "<p>3 of 4 right</p>" in page
    assert "alert(1)" not in page and "onerror" not in page

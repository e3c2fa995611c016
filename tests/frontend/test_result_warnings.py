"""The host's challenge page warns about results that lacked leaderboard labels (they
are stored and finished, as EvalAI stores them); participants never see that box."""

from __future__ import annotations

import pytest

from challenges.models import SubmissionResult

pytestmark = pytest.mark.django_db


def test_the_hosts_page_warns_about_results_lacking_labels(world, client_as):
    url = f"/host/challenges/{world.challenge.pk}/"
    assert 'id="lacking-labels"' not in client_as("host").get(url).content.decode()
    SubmissionResult.objects.filter(
        submission=world.dave_sub, phase_split__dataset_split__codename="public"
    ).update(scores={"Accuracy": 0.9})
    page = client_as("host").get(url).content.decode()
    assert 'id="lacking-labels"' in page
    assert "split <code>public</code>: 1 result(s) lack one of Accuracy, Macro-F1" in page

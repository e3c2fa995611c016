"""Toggles: show on the leaderboard and final picks (the team), baselines and split
visibility (the hosts). Each through its service; refusals are messages, not errors."""

from __future__ import annotations

import pytest

from challenges.models import ChallengePhaseSplit, Submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_choices(world):
    """Let teams hide submissions and pick up to one final one in the test phase."""
    world.challenge.phases.filter(codename="test").update(
        is_submission_public=False, max_final_submissions=1
    )
    return world


def state(submission: Submission) -> Submission:
    submission.refresh_from_db()
    return submission


def test_the_team_hides_shows_and_picks_its_final_submission(open_choices, client_as):
    w = open_choices
    client = client_as("participant")
    client.post(f"/submissions/{w.charlie_sub.pk}/public/")
    assert not state(w.charlie_sub).is_public
    client.post(f"/submissions/{w.charlie_sub.pk}/public/", {"value": "on"})
    assert state(w.charlie_sub).is_public
    client.post(f"/submissions/{w.charlie_sub.pk}/final/", {"value": "on"})
    assert state(w.charlie_sub).is_final
    listing = client.get(f"/challenges/{w.challenge.pk}/submissions/").content.decode()
    assert "final pick" in listing and "Unpick final" in listing


def test_refusals_come_back_as_messages(world, client_as):
    client = client_as("participant")
    page = client.post(f"/submissions/{world.charlie_sub.pk}/public/", follow=True)
    assert b"cannot be hidden" in page.content  # the starter shows every submission
    page = client.post(f"/submissions/{world.charlie_sub.pk}/final/", {"value": "on"}, follow=True)
    assert b"has no final picks" in page.content


@pytest.mark.parametrize(
    ("role", "what", "status"),
    [
        ("other_team", "public", 404),
        ("other_team", "final", 404),
        ("host", "public", 403),
        ("participant", "baseline", 403),
        ("other_host", "baseline", 404),
        ("anonymous", "public", 302),
    ],
)
def test_only_the_team_and_the_hosts_may_choose(open_choices, client_as, role, what, status):
    answer = client_as(role).post(f"/submissions/{open_choices.charlie_sub.pk}/{what}/")
    assert answer.status_code == status


def test_hosts_mark_baselines_and_flip_split_visibility(world, client_as):
    host = client_as("host")
    host.post(f"/submissions/{world.dave_sub.pk}/baseline/", {"value": "on"})
    assert state(world.dave_sub).is_baseline
    board = client_as("anonymous").get(
        f"/challenges/{world.challenge.pk}/phases/test/leaderboard/public/"
    )
    assert b'<span class="badge">baseline</span>' in board.content

    url = f"/host/challenges/{world.challenge.pk}/phases/test/leaderboard/private/visibility/"
    host.post(url, {"visibility": "3"})
    split = ChallengePhaseSplit.objects.get(
        phase__codename="test", dataset_split__codename="private"
    )
    assert split.visibility == 3
    private = f"/challenges/{world.challenge.pk}/phases/test/leaderboard/private/"
    assert client_as("participant").get(private).status_code == 200
    assert client_as("participant").post(url, {"visibility": "1"}).status_code == 403
    bad = host.post(url, {"visibility": "9"}, follow=True)
    assert b"Choose a visibility" in bad.content
    assert client_as("other_host").post(url, {"visibility": "1"}).status_code == 403

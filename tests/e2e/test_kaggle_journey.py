"""Kaggle's mechanics in a real browser (gunicorn, a Celery worker, PostgreSQL, Redis,
headless Chromium): two teams merge, one submits late after the end, the host reveals the
private split and the participants see the shake-up."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from challenges.models import ChallengePhase, Submission, TeamMerge
from tests.frontend.conftest import _finished, _team
from tests.workers.pipeline_helpers import GOOD_EVALUATE, load_approved, script_bundle

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_teams_merge_one_submits_late_and_everyone_sees_the_shake_up(
    e2e, users, host_teams, django_user_model, tmp_path
):
    challenge = load_approved(
        script_bundle(
            GOOD_EVALUATE,
            title="Kaggle Cup",
            allow_late_submissions=True,
            private_splits_reveal="by_host",
        ),
        users,
        host_teams["alice"],
    )
    phase = challenge.phases.get()
    for name in ("dave", "erin"):
        users[name] = django_user_model.objects.create_user(
            name, f"{name}@example.org", f"pw-{name}-123"
        )
    # (public Score, private Score) of each team's one submission so far.
    board = {
        "Charlie Crew": (users["charlie"], 0.9, 0.3),
        "Dave Duo": (users["dave"], 0.8, 0.6),
        "Erin Eagles": (users["erin"], 0.7, 0.9),
    }
    for name, (user, public, private) in board.items():
        _finished(
            phase,
            _team(user, name, challenge),
            user,
            scores={
                "main": {"Score": public, "Other": 0},
                "hidden": {"Score": private, "Other": 0},
            },
            stdout="",
        )

    # Charlie, leader of Charlie Crew, asks Dave Duo to merge.
    charlie = e2e.page()
    e2e.login(charlie, "charlie")
    charlie.goto(f"/challenges/{challenge.pk}/")
    expect(charlie.locator("[data-deadline=final]")).to_contain_text("UTC")
    charlie.get_by_role("link", name="Team merges").click()
    charlie.get_by_label("Team").select_option(label="Dave Duo")
    charlie.get_by_role("button", name="Send merge request").click()
    expect(charlie.locator(".flash.success")).to_contain_text("Dave Duo was asked to merge")

    # Dave, Dave Duo's leader, accepts: one team, one leaderboard row.
    dave = e2e.page()
    e2e.login(dave, "dave", "pw-dave-123")
    dave.goto(f"/challenges/{challenge.pk}/merges/")
    dave.get_by_role("button", name="Accept").click()
    expect(dave.locator(".flash.success")).to_contain_text("The teams are merged.")
    expect(dave.locator("tr[data-status=accepted]")).to_contain_text("1 submission")
    assert TeamMerge.objects.get().status == TeamMerge.Status.ACCEPTED
    dave.goto(f"/challenges/{challenge.pk}/phases/probe/leaderboard/main/")
    rows = dave.locator("table.leaderboard tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Dave Duo")
    expect(rows.nth(0)).to_contain_text("0.90")

    # The phase ends; charlie, now in Dave Duo, submits late.
    ChallengePhase.objects.filter(pk=phase.pk).update(
        end_date=timezone.now() - dt.timedelta(minutes=1)
    )
    charlie.goto(f"/challenges/{challenge.pk}/")
    charlie.get_by_role("link", name="Submit late to Probe").click()
    expect(charlie.locator("[data-late]")).to_contain_text("a submission now is late")
    answer = tmp_path / "answer.txt"
    answer.write_text("42\n")
    charlie.get_by_label("Submission file").set_input_files(str(answer))
    charlie.get_by_role("button", name="Upload and submit").click()
    expect(charlie.locator("#upload-result [data-status]")).to_have_text("Finished", timeout=60_000)
    late = Submission.objects.get(is_late=True)
    assert late.status == Submission.Status.FINISHED
    assert {r.phase_split.dataset_split.codename for r in late.results.all()} == {"main", "hidden"}
    charlie.goto(f"/challenges/{challenge.pk}/submissions/")
    expect(charlie.locator(f"tr[data-submission='{late.pk}'] .badge.late")).to_have_text("late")
    # Scored 1.0 on main, but never ranked: the board still shows 0.90.
    charlie.goto(f"/challenges/{challenge.pk}/phases/probe/leaderboard/main/")
    expect(charlie.locator("table.leaderboard tbody tr.own")).to_contain_text("0.90")

    # The host sees the merge and the late submission in the list, then reveals.
    alice = e2e.page()
    e2e.login(alice, "alice")
    alice.goto(f"/host/challenges/{challenge.pk}/submissions/")
    expect(alice.locator(".badge.late")).to_have_count(1)
    expect(alice.locator("body")).to_contain_text("merged from Charlie Crew")
    alice.goto(f"/challenges/{challenge.pk}/phases/probe/leaderboard/hidden/")
    alice.get_by_role("button", name="Reveal the private leaderboard").click()
    expect(alice.locator(".flash.success")).to_contain_text("revealed")

    # Participants see the moves (Erin Eagles up one, Dave Duo down one) and the plot.
    erin = e2e.page()
    e2e.login(erin, "erin", "pw-erin-123")
    erin.goto(f"/challenges/{challenge.pk}/phases/probe/leaderboard/hidden/")
    own = erin.locator("table.leaderboard tbody tr.own")
    expect(own).to_contain_text("Erin Eagles")
    expect(own.locator("td.move")).to_have_text("▲ 1")
    expect(erin.locator("tr", has_text="Dave Duo").locator("td.move")).to_have_text("▼ 1")
    erin.get_by_role("link", name="See the shake-up").click()
    erin.wait_for_url(re.compile(r"/shake-up/$"))
    expect(erin.locator("svg.shake-up circle")).to_have_count(2)
    expect(erin.locator("svg.shake-up circle.own")).to_have_attribute("data-team", "Erin Eagles")
    dave.goto(f"/challenges/{challenge.pk}/phases/probe/leaderboard/hidden/shake-up/")
    expect(dave.locator("tr[data-team='Dave Duo'] td.move")).to_have_attribute("data-move", "-1")

"""A Codabench bundle in a real browser: uploaded, approved, submitted to, scored."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from challenges.models import Challenge
from tests.challenges.codalab_factory import result_zip, v2_bundle
from tests.e2e.conftest import admin_approves
from tests.workers.pipeline_helpers import participate

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_a_codabench_bundle_is_uploaded_approved_submitted_to_and_shows_detailed_results(
    e2e, users, host_teams, tmp_path
):
    bundle = tmp_path / "codabench_competition.zip"
    bundle.write_bytes(v2_bundle(open_now=True))
    host = e2e.page()
    e2e.login(host, "alice")
    host.goto("/host/upload/")
    host.get_by_label("Challenge zip").set_input_files(str(bundle))
    host.get_by_role("button", name="Upload", exact=True).click()
    host.wait_for_url(re.compile(r"/host/challenges/\d+/$"))
    expect(host.locator(".flash.success")).to_contain_text("Toy Codabench competition")
    challenge = Challenge.objects.get()

    admin_approves(e2e, challenge)

    # Codabench keeps publishing a UI switch, not a yaml key: the host publishes it.
    Challenge.objects.filter(pk=challenge.pk).update(published=True)
    participate(users["charlie"], challenge)
    answer = tmp_path / "result.zip"
    answer.write_bytes(result_zip("a b c x"))
    page = e2e.page()
    e2e.login(page, "charlie")
    page.goto(f"/challenges/{challenge.pk}/")
    page.get_by_role("link", name="Submit to Feedback").click()
    page.get_by_label("Submission file").set_input_files(str(answer))
    page.get_by_role("button", name="Upload and submit").click()
    status = page.locator("#upload-result [data-status]")
    expect(status).to_have_text("Finished", timeout=90_000)

    page.goto(f"/challenges/{challenge.pk}/")
    page.get_by_role("link", name="Leaderboard: Easy").click()
    row = page.locator("table.leaderboard tbody tr.own")
    expect(row).to_contain_text("0.75")
    expect(page.locator("table.leaderboard thead")).to_contain_text("Mean accuracy")

    submission = challenge.phases.get(codename="feedback").submissions.get()
    page.goto(f"/submissions/{submission.pk}/")
    detailed = page.locator("[data-detailed-results=easy]")
    expect(detailed).to_contain_text("3 hits")
    expect(detailed.locator("b")).to_have_count(1)

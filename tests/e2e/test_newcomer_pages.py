"""What a newcomer stumbled on (issue 23), in a real browser against gunicorn and a real
worker: the submit page's quota after a submission, a finished submission's page, the
leaderboard chart's axes, and the 404 page of a demo (DEBUG on). Each test leaves its
page's screenshot in test-artifacts/newcomers/, pass or fail."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from playwright.sync_api import expect

from challenges.models import Submission
from starters.build import sample_submissions
from tests.e2e.conftest import ARTIFACTS, serve
from tests.e2e.test_browser import load_starter
from tests.frontend.conftest import _team

pytestmark = [pytest.mark.e2e, pytest.mark.services]

SHOTS = ARTIFACTS / "newcomers"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"e2e-{name}.png"), full_page=True)


@pytest.fixture
def tabular(users, host_teams, starter_zips):
    challenge = load_starter(users, host_teams["alice"], starter_zips["tabular_classification"])
    _team(users["charlie"], "Charlie Team", challenge)
    return challenge


def submit_in_browser(page, challenge, starter_dir, *, go: bool = True) -> Submission:
    sample = sample_submissions(starter_dir)["tabular_classification"]["dev"]
    if go:
        page.goto(f"/challenges/{challenge.pk}/phases/dev/submit/")
    page.set_input_files("input[type=file]", str(sample))
    page.get_by_role("button", name="Upload and submit").click()
    expect(page.locator("[data-progress-text]")).to_have_text("Uploaded.", timeout=30_000)
    return Submission.objects.filter(phase__challenge=challenge).latest("pk")


def test_the_quota_box_counts_a_submission_without_a_reload(e2e, tabular, starter_dir):
    page = e2e.page()
    e2e.login(page, "charlie")
    page.goto(f"/challenges/{tabular.pk}/phases/dev/submit/")
    today = page.locator("#quota tbody tr").first.locator("td")
    expect(today.nth(1)).to_have_text("0")  # used today
    left_today = int(today.nth(3).inner_text())
    page.evaluate("window.__noReload = true")
    shot(page, "06-quota-before-submitting")
    submit_in_browser(page, tabular, starter_dir, go=False)
    # The box is fetched again: today's count takes the new submission, with no reload.
    today = page.locator("#quota tbody tr").first.locator("td")
    expect(today.nth(1)).to_have_text("1", timeout=10_000)
    expect(today.nth(3)).to_have_text(str(left_today - 1))
    assert page.evaluate("window.__noReload") is True
    shot(page, "06-quota-after-submitting")


def test_a_finished_submission_shows_its_results_as_tables_and_no_orphan_hint(
    e2e, tabular, starter_dir
):
    page = e2e.page()
    e2e.login(page, "charlie")
    submission = submit_in_browser(page, tabular, starter_dir)
    page.goto(f"/submissions/{submission.pk}/")
    expect(page.locator("[data-status]")).to_have_text("Finished", timeout=60_000)
    details = page.locator("#result-details")
    expect(details).to_be_visible()
    expect(details.locator("tbody tr").first.locator("td").first).to_have_text(
        "dev_split / Accuracy"
    )
    body = page.locator("main, body").first.inner_text()
    assert "{'" not in body and "'dev_split'" not in body  # no Python repr
    # The logs are the hosts' to show; nothing failed, so no "message above" is pointed at.
    assert "The hosts do not show evaluation logs to participants in this phase." in body
    assert "the message above says what went wrong" not in body
    shot(page, "07-08-finished-submission")


def test_the_leaderboard_chart_uses_the_metrics_own_scale_and_one_format(e2e, tabular, starter_dir):
    page = e2e.page()
    e2e.login(page, "charlie")
    submission = submit_in_browser(page, tabular, starter_dir)
    for _ in range(120):
        submission.refresh_from_db()
        if submission.is_final_state:
            break
        page.wait_for_timeout(500)
    assert submission.status == Submission.Status.FINISHED, submission.failure_message
    page.goto(f"/challenges/{tabular.pk}/phases/dev/leaderboard/dev_split/")
    svg = page.locator("svg.chart").evaluate("el => el.outerHTML")
    texts = [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]  # noqa: S314
    values, dates = texts[:-2], texts[-2:]
    # One Accuracy of about 0.68: drawn on 0..1, not 0.18..1.18, every tick at one precision.
    assert values == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"], texts
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d [A-Z+0-9:-]+", d) for d in dates), (
        dates
    )  # zone named
    shot(page, "09-leaderboard-chart")


@pytest.fixture(scope="module")
def demo_server(pipeline_env, tmp_path_factory):
    """gunicorn as `make demo` runs it: DEBUG on."""
    yield from serve(pipeline_env, tmp_path_factory.mktemp("demo-web"), DEBUG="true")


def test_a_hidden_leaderboard_is_the_platforms_404_in_the_demo_too(
    e2e, demo_server, chromium, tabular
):
    context = chromium.new_context(base_url=demo_server.url)
    try:
        page = context.new_page()
        e2e.login(page, "charlie")
        answer = page.goto(f"/challenges/{tabular.pk}/phases/test/leaderboard/private/")
        assert answer.status == 404
        expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
        text = page.content()
        assert "URLconf" not in text and "Django tried these URL patterns" not in text
        shot(page, "10-hidden-leaderboard-404-debug-on")
    finally:
        context.close()

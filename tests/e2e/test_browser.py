"""Real browser journeys. See tests/e2e/conftest.py for the processes behind them."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.db import transaction
from playwright.sync_api import expect

from challenges.models import Challenge, Submission, SubmissionResult
from challenges.services.bundles import challenge_load_bundle
from challenges.services.challenges import challenge_approve
from tests.challenges import bundle_factory as bf
from tests.e2e.conftest import admin_approves, save_screenshots
from tests.frontend.conftest import _finished, _team

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_host_uploads_admin_approves_participant_submits_and_sees_the_leaderboard(
    e2e, host_teams, starter_zips, starter_dir
):
    # The host uploads the starter zip; the progress bar shows the upload.
    host = e2e.page()
    e2e.login(host, "alice")
    host.goto("/host/")
    host.get_by_role("link", name="Upload a challenge", exact=True).click()
    host.get_by_label("Challenge zip").set_input_files(str(starter_zips["tabular_classification"]))
    host.get_by_role("button", name="Upload", exact=True).click()
    host.wait_for_url(re.compile(r"/host/challenges/\d+/$"))
    expect(host.locator(".flash.success")).to_contain_text("Tabular Classification Starter")
    expect(host.locator(".review")).to_have_text("Pending review")
    challenge = Challenge.objects.get()

    # An admin approves it in the Django admin.
    admin_approves(e2e, challenge)

    # A new participant signs up, creates a team and accepts the terms.
    page = e2e.page()
    page.goto("/")
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Username").fill("zoe")
    page.get_by_label("Email").fill("zoe@example.org")
    page.get_by_label("Password", exact=True).fill("zoe-long-passphrase-1")
    page.get_by_label("Password confirmation").fill("zoe-long-passphrase-1")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/teams/")
    page.get_by_label("Team name").fill("Zoe's Zebras")
    page.get_by_role("button", name="Create team").click()
    expect(page.locator(".flash.success")).to_contain_text("Zoe's Zebras")
    page.get_by_role("link", name="Challenges", exact=True).click()
    page.get_by_role("link", name="Tabular Classification Starter").click()
    page.get_by_label("I have read and accept").check()
    page.get_by_role("button", name="Participate").click()
    expect(page.locator(".flash.success")).to_contain_text("takes part")

    # It submits the sample: the remaining quota shows first, then the progress bar.
    page.get_by_role("link", name="Submit to Dev Phase").click()
    expect(page.locator("#quota")).to_contain_text("submission(s) left")
    page.get_by_label("Submission file").set_input_files(
        str(starter_dir / "tabular_classification" / "sample_submission_dev.csv")
    )
    page.get_by_label("Method name").fill("sample")
    page.get_by_label("Tree ensemble").check()
    page.evaluate("window.__noReload = true")
    page.get_by_role("button", name="Upload and submit").click()
    progress = page.locator("#upload-progress")
    expect(progress).to_be_visible()
    expect(progress).to_have_attribute("value", "100")

    # The status turns to finished without a reload (app.js polls the JSON API).
    status = page.locator("#upload-result [data-status]")
    expect(status).to_have_text("Finished", timeout=60_000)
    assert page.evaluate("window.__noReload") is True
    expect(page.locator("#upload-result [data-results]")).to_contain_text("Accuracy")
    submission = Submission.objects.get()
    assert submission.status == Submission.Status.FINISHED

    # The leaderboard shows the team's row, highlighted, and the chart.
    page.goto(f"/challenges/{challenge.pk}/")
    page.get_by_role("link", name="Leaderboard: Dev Split").click()
    row = page.locator("table.leaderboard tbody tr.own")
    expect(row).to_contain_text("Zoe's Zebras")
    expect(page.locator("svg.chart circle.best-dot")).to_have_count(1)


def test_a_bad_zip_shows_its_problems_on_the_upload_page(e2e, host_teams, tmp_path):
    def break_it(config):
        config["challenge_phases"][1]["codename"] = config["challenge_phases"][0]["codename"]
        config["leaderboard"][0]["schema"]["default_order_by"] = "Nope"

    bad = tmp_path / "bad.zip"
    bad.write_bytes(bf.with_config(break_it))
    page = e2e.page()
    e2e.login(page, "alice")
    page.goto("/host/upload/")
    page.get_by_label("Challenge zip").set_input_files(str(bad))
    page.get_by_role("button", name="Upload", exact=True).click()
    problems = page.locator("#upload-result .problems")
    expect(problems).to_contain_text("problem(s)")
    expect(problems).to_contain_text("challenge_phases[1].codename")
    expect(problems).to_contain_text("challenge_config.yaml")
    assert problems.locator("tr.problem.error").count() >= 2
    assert page.url.endswith("/host/upload/")
    assert not Challenge.objects.exists()


def load_starter(users, team, path, *, description: str | None = None) -> Challenge:
    data = path.read_bytes()
    if description is not None:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            files = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
        files["templates/description.html"] = description.encode()
        data = bf.zip_bytes(files)
    challenge = challenge_load_bundle(
        source=io.BytesIO(data), user=users["alice"], host_team=team
    ).challenge
    challenge_approve(challenge=challenge, reviewer=users["admin"])
    return challenge


def test_an_outsider_sees_neither_a_host_only_split_nor_another_teams_logs(
    e2e, users, host_teams, starter_zips
):
    challenge = load_starter(users, host_teams["alice"], starter_zips["tabular_classification"])
    charlie_team = _team(users["charlie"], "Charlie Team", challenge)
    _team(users["bob"], "Bob Team", challenge)  # bob: another team's member, not a host here
    submission = _finished(
        challenge.phases.get(codename="test"),
        charlie_team,
        users["charlie"],
        scores={
            "public": {"Accuracy": 0.81, "Macro-F1": 0.8},
            "private": {"Accuracy": 0.7777, "Macro-F1": 0.7666},
        },
        stdout="charlie-secret-stdout",
    )
    page = e2e.page()
    e2e.login(page, "bob")
    page.goto(f"/challenges/{challenge.pk}/")
    expect(page.locator("#phases ~ article").first).to_be_visible()
    assert page.locator("a[href*='/leaderboard/private/']").count() == 0
    page.goto(f"/challenges/{challenge.pk}/phases/test/leaderboard/public/")
    expect(page.locator("table.leaderboard")).to_contain_text("Charlie Team")
    assert "0.7777" not in page.content()
    for url in (
        f"/challenges/{challenge.pk}/phases/test/leaderboard/private/",
        f"/submissions/{submission.pk}/",
    ):
        answer = page.goto(url)
        assert answer.status == 404
        expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
        assert "charlie-secret-stdout" not in page.content() and "0.7777" not in page.content()
    answer = page.goto(f"/api/v1/submissions/{submission.pk}/stdout/")
    assert answer.status == 404 and "charlie-secret-stdout" not in page.content()

    # Charlie himself sees his logs where the host shows them (issue 11), but not the
    # host-only scores.
    from challenges.models import ChallengePhase

    ChallengePhase.objects.filter(pk=submission.phase_id).update(show_logs_to_participants=True)
    own = e2e.page()
    e2e.login(own, "charlie")
    own.goto(f"/submissions/{submission.pk}/")
    expect(own.locator("[data-stdout]")).to_have_text("charlie-secret-stdout")
    assert "0.7777" not in own.content()


def test_a_script_tag_in_a_bundle_description_does_not_run(e2e, users, host_teams, starter_zips):
    challenge = load_starter(
        users,
        host_teams["alice"],
        starter_zips["tabular_classification"],
        description=(
            "<h2>Welcome</h2><script>window.__pwned = 'script'</script>"
            '<img src="x" onerror="window.__pwned = \'onerror\'">'
            "<a href=\"javascript:window.__pwned='link'\">click</a>"
        ),
    )
    page = e2e.page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/challenges/{challenge.pk}/")
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    page.locator("#overview").get_by_text("click").click()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned === undefined")
    assert dialogs == []
    html = page.locator("#overview").inner_html()
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html


@pytest.mark.parametrize("path", ["/", "/accounts/signup/", "challenge", "leaderboard"])
def test_pages_fit_a_phone_screen(e2e, users, host_teams, starter_zips, path):
    challenge = load_starter(users, host_teams["alice"], starter_zips["tabular_classification"])
    url = {
        "challenge": f"/challenges/{challenge.pk}/",
        "leaderboard": f"/challenges/{challenge.pk}/phases/test/leaderboard/public/",
    }.get(path, path)
    page = e2e.page(viewport={"width": 375, "height": 740})
    page.goto(url)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{url} is {overflow} px wider than a phone screen"


def test_a_failed_browser_test_leaves_a_screenshot(e2e):
    page = e2e.page()
    page.goto("/")
    saved = save_screenshots([page], "screenshot-probe")
    assert saved and saved[0].stat().st_size > 1000
    saved[0].unlink()


def test_my_submissions_follow_the_status_without_a_reload(e2e, users, host_teams, starter_zips):
    challenge = load_starter(users, host_teams["alice"], starter_zips["tabular_classification"])
    team = _team(users["charlie"], "Charlie Team", challenge)
    phase = challenge.phases.get(codename="dev")
    running = Submission.objects.create(
        phase=phase,
        team=team,
        created_by=users["charlie"],
        input_file="submissions/x.csv",
        file_name="waiting.csv",
        input_sha256="0" * 64,
        input_size=1,
        status=Submission.Status.RUNNING,
    )
    page = e2e.page()
    e2e.login(page, "charlie")
    page.goto(f"/challenges/{challenge.pk}/submissions/")
    row = page.locator(f"tr[data-submission='{running.pk}']")
    expect(row.locator("[data-status]")).to_have_text("Running")
    page.evaluate("window.__noReload = true")
    # What a worker's submission_record_outcome leaves: results, then the final status,
    # in one transaction (the page must never see one without the other).
    with transaction.atomic():
        SubmissionResult.objects.create(
            submission=running,
            phase_split=phase.phase_splits.get(dataset_split__codename="dev_split"),
            attempt=1,
            scores={"Accuracy": 0.9, "Macro-F1": 0.85},
        )
        Submission.objects.filter(pk=running.pk).update(status=Submission.Status.FINISHED)
    expect(row.locator("[data-status]")).to_have_text("Finished", timeout=10_000)
    expect(row.locator("[data-results]")).to_contain_text("Accuracy 0.9")
    assert page.evaluate("window.__noReload") is True


def test_a_host_opens_a_split_and_rescores_a_phase(e2e, users, host_teams, starter_zips):
    challenge = load_starter(users, host_teams["alice"], starter_zips["tabular_classification"])
    team = _team(users["charlie"], "Charlie Team", challenge)
    _finished(
        challenge.phases.get(codename="test"),
        team,
        users["charlie"],
        scores={"public": {"Accuracy": 0.8}, "private": {"Accuracy": 0.6543}},
        stdout="",
    )
    host = e2e.page()
    e2e.login(host, "alice")
    host.goto(f"/host/challenges/{challenge.pk}/")
    host.get_by_label("Visibility of private").select_option("3")
    host.get_by_label("Visibility of private").locator("xpath=..").get_by_role(
        "button", name="Set"
    ).click()
    expect(host.locator(".flash.success")).to_contain_text("test / private is now: public")
    host.on("dialog", lambda dialog: dialog.accept())
    host.get_by_role("button", name="Re-score Test Phase").click()
    expect(host.locator(".flash.success")).to_contain_text("1 submission(s) of Test Phase")

    participant = e2e.page()
    e2e.login(participant, "charlie")
    participant.goto(f"/challenges/{challenge.pk}/")
    participant.get_by_role("link", name="Leaderboard: Test Split (private)").click()
    expect(participant.locator("h1")).to_contain_text("Test Split (private)")

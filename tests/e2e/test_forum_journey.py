"""Issue 26 in a browser, against gunicorn, a Celery worker and a real SMTP server: a
participant asks in the forum, the host answers and pins it, the participant sees the
notification count and the email arrives; a host opens analytics after a burst of
submissions, and Prometheus scrapes /metrics."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest
from playwright.sync_api import expect
from prometheus_client.parser import text_string_to_metric_families

from challenges.models import Challenge, Thread
from tests.e2e.test_browser import load_starter
from tests.frontend.conftest import _team
from tests.mail import SmtpServer
from tests.workers.pipeline_helpers import submit, wait_final

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def reload_until(page, locator, text: str, timeout: float = 30) -> None:
    """Reload until `locator` shows `text` (the count comes from a worker, not the page)."""
    deadline = time.monotonic() + timeout
    while True:
        if locator.count() and text in locator.inner_text():
            return
        if time.monotonic() > deadline:
            expect(locator).to_contain_text(text)  # fails with Playwright's message
        time.sleep(0.5)
        page.reload()


def test_a_question_answered_and_pinned_reaches_the_asker_on_the_site_and_by_email(
    e2e, users, host_teams, starter_zips, smtp_port, tmp_path
):
    smtp = SmtpServer(smtp_port, tmp_path / "maildir").start()
    try:
        challenge = load_starter(users, host_teams["alice"], starter_zips["tabular_classification"])
        Challenge.objects.filter(pk=challenge.pk).update(published=True)
        _team(users["charlie"], "Charlie Team", challenge)

        asker = e2e.page()
        e2e.login(asker, "charlie")
        asker.goto(f"/challenges/{challenge.pk}/")
        asker.get_by_role("link", name="Forum", exact=True).click()
        asker.get_by_label("Title").fill("Is the test set balanced?")
        asker.get_by_label("Message (Markdown)").fill("Asking before I **submit**.")
        asker.get_by_role("button", name="Post", exact=True).click()
        asker.wait_for_url(re.compile(r"/forum/\d+/$"))
        expect(asker.locator("article.post strong").last).to_have_text("submit")
        thread = Thread.objects.get(challenge=challenge)

        host = e2e.page()
        e2e.login(host, "alice")
        host.goto(f"/challenges/{challenge.pk}/forum/{thread.pk}/")
        host.get_by_label("Reply (Markdown)").fill("Yes, 50/50: see `evaluate.py`.")
        host.get_by_role("button", name="Post reply").click()
        expect(host.locator("article.post")).to_have_count(2)
        host.get_by_role("button", name="Pin", exact=True).click()
        expect(host.locator("h1 .badge")).to_contain_text("pinned")

        # The worker fanned the reply out: the header counts it, the list links to it.
        count = asker.get_by_test_id("notification-count")
        asker.goto("/")
        reload_until(asker, count.locator(".badge"), "1")
        count.click()
        asker.get_by_role("link", name=re.compile("alice replied")).click()
        expect(asker.locator("article.post")).to_have_count(2)
        expect(asker.locator("h1 .badge")).to_contain_text("pinned")

        # (alice has mail too: the approval of her challenge.)
        deadline = time.monotonic() + 30
        while not (mine := [m for m in smtp.messages() if m["To"] == "charlie@example.org"]):
            assert time.monotonic() < deadline, "no email reached charlie in 30 s"
            time.sleep(0.2)
        [mail] = mine
        assert "alice replied in “Is the test set balanced?”" in str(mail["Subject"])
        body = mail.get_content()
        assert "Yes, 50/50: see `evaluate.py`." in body
        unsubscribe = str(mail["List-Unsubscribe"]).strip().strip("<>")
        assert "/notifications/unsubscribe/" in unsubscribe and unsubscribe in body
    finally:
        smtp.stop()


def test_a_host_opens_analytics_after_a_burst_and_metrics_are_scraped(
    e2e, users, host_teams, starter_zips, starter_dir, api
):
    challenge = load_starter(users, host_teams["alice"], starter_zips["tabular_classification"])
    _team(users["charlie"], "Charlie Team", challenge)
    good = (starter_dir / "tabular_classification" / "sample_submission_dev.csv").read_bytes()
    client = api("charlie")
    ids = []
    for _ in range(3):
        answer = submit(client, challenge, "dev", good, name="good.csv")
        assert answer.status_code == 201, answer.content
        ids.append(answer.json()["id"])
    wait_final(ids)
    broken = []
    for _ in range(2):
        answer = submit(client, challenge, "dev", good.splitlines()[0] + b"\n", name="empty.csv")
        assert answer.status_code == 201, answer.content
        broken.append(answer.json()["id"])
    rows = wait_final(broken)
    assert {r.status for r in rows} == {"failed"}

    page = e2e.page()
    e2e.login(page, "alice")
    page.goto(f"/host/challenges/{challenge.pk}/")
    page.get_by_role("link", name="Analytics").first.click()
    page.wait_for_url(re.compile(r"/phases/dev/analytics/$"))
    per_day = page.locator("#per-day")
    expect(per_day.locator("thead")).to_contain_text("failed")
    expect(per_day.locator("tbody tr").first).to_contain_text("3")
    expect(page.locator("#eval-time tbody td").first).to_have_text("3")
    expect(page.locator("#last-per-team")).to_contain_text("Charlie Team")

    request = urllib.request.Request(  # noqa: S310 (gunicorn on 127.0.0.1)
        e2e.url + "/metrics", headers={"Authorization": "Bearer e2e-metrics-token"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (127.0.0.1)
        text = answer.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    statuses = {s.labels["status"]: s.value for s in families["evalserver_submissions"].samples}
    assert statuses["finished"] >= 3 and statuses["failed"] >= 2
    assert families["evalserver_evaluation_duration_seconds"].samples
    assert {s.labels["queue"] for s in families["evalserver_queue_depth"].samples}

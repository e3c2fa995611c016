"""The submit page's resumable upload in a real browser against gunicorn: the connection
drops at half, the page is reloaded, the same file is chosen again and the upload goes on
from the server's offset (a part damaged on its way is refused by its checksum and sent
again); the submission's sha256 is right and it scores."""

from __future__ import annotations

import hashlib

import pytest
from playwright.sync_api import expect

from challenges.models import ResumableUpload, Submission
from tests.workers.pipeline_helpers import load_approved, participate

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_a_dropped_upload_resumes_after_a_page_reload(
    e2e, users, host_teams, starter_zips, starter_dir
):
    challenge = load_approved(starter_zips["tabular_classification"], users, host_teams["alice"])
    participate(users["charlie"], challenge)
    sample = starter_dir / "tabular_classification" / "sample_submission_dev.csv"
    size = sample.stat().st_size
    part = size // 6 + 1

    page = e2e.page()
    e2e.login(page, "charlie")
    page.goto(f"/challenges/{challenge.pk}/phases/dev/submit/")
    form = page.locator("form[data-resumable]")
    form.evaluate(f"f => f.dataset.partBytes = '{part}'")

    # The network gives out after three PATCHes.
    patches = {"n": 0}

    def flaky(route):
        if route.request.method == "PATCH":
            patches["n"] += 1
            if patches["n"] > 3:
                route.abort("connectionreset")
                return
        route.continue_()

    page.route("**/api/v1/uploads/**", flaky)
    page.get_by_label("Submission file").set_input_files(str(sample))
    page.get_by_label("Tree ensemble").check()
    page.get_by_role("button", name="Upload and submit").click()
    expect(page.locator("#upload-result .flash.error")).to_contain_text("paused at", timeout=30_000)
    upload = ResumableUpload.objects.get()
    assert upload.offset == 3 * part
    assert not Submission.objects.exists()

    # A reload: the page says an upload can go on; the same file continues from the offset.
    page.unroute("**/api/v1/uploads/**")
    page.reload()
    expect(page.locator("[data-resume-note]")).to_contain_text("sample_submission_dev.csv")

    # The first part sent after the reload arrives damaged: its checksum gives it away, the
    # server refuses it (460) and the page sends it again.
    damaged = []

    def damage_once(route):
        if route.request.method == "PATCH" and not damaged:
            body = bytearray(route.request.post_data_buffer)
            body[len(body) // 2] ^= 0xFF
            damaged.append(route.request.headers["upload-offset"])
            route.continue_(post_data=bytes(body))
            return
        route.continue_()

    page.route("**/api/v1/uploads/**", damage_once)
    offsets, sums, answers = [], [], []

    def sent(r):
        if r.method == "PATCH":
            offsets.append(int(r.headers["upload-offset"]))
            sums.append(r.headers.get("upload-checksum", ""))

    page.on("request", sent)
    page.on("response", lambda r: answers.append(r.status) if r.request.method == "PATCH" else None)
    page.locator("form[data-resumable]").evaluate(f"f => f.dataset.partBytes = '{part}'")
    page.get_by_label("Submission file").set_input_files(str(sample))
    page.get_by_label("Tree ensemble").check()
    page.get_by_role("button", name="Upload and submit").click()
    expect(page.locator("#upload-result [data-status]")).to_have_text("Finished", timeout=60_000)
    assert offsets[0] == offsets[1] == 3 * part, offsets  # the damaged part, again
    assert answers[:2] == [460, 204], answers
    assert all(value.startswith("sha256 ") for value in sums), sums
    submission = Submission.objects.get()
    assert submission.input_sha256 == hashlib.sha256(sample.read_bytes()).hexdigest()
    assert submission.status == Submission.Status.FINISHED
    assert page.evaluate("Object.keys(localStorage).length") == 0

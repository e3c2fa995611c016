"""A member of staff signs in through the company's provider (its own login page, in
Chromium) on an SSO-only site, and submits to a starter challenge."""

from __future__ import annotations

import re
import sys

import pytest
from playwright.sync_api import expect

from challenges.models import ExternalIdentity, Submission
from tests.conftest import require_service
from tests.e2e.conftest import save_screenshots, start_web_server, stop_web_server
from tests.e2e.test_browser import load_starter
from tests.identity.servers import (
    CLIENT_ID,
    CLIENT_SECRET,
    node_ready,
    start_oidc_provider,
)
from tests.services import spare_port

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_staff_sign_in_with_the_company_provider_and_submit(
    pipeline,
    pipeline_env,
    chromium,
    users,
    host_teams,
    starter_zips,
    starter_dir,
    tmp_path,
    request,
):
    missing = node_ready()
    require_service(missing or "node", not missing)
    port = spare_port()
    provider = start_oidc_provider(
        tmp_path / "oidc",
        redirect_uris=[f"http://127.0.0.1:{port}/oidc/callback/"],
        users={"dana": {"email": "dana@example.org", "given_name": "Dana", "groups": []}},
    )
    server = start_web_server(
        pipeline_env,
        tmp_path / "web",
        port=port,
        OIDC_DISCOVERY_URL=provider.issuer,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_PROVIDER_NAME="Example SSO",
        SSO_ONLY="true",
    )
    challenge = load_starter(users, host_teams["alice"], starter_zips["tabular_classification"])
    context = chromium.new_context(base_url=server.url, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    failed = True  # screenshots and logs only when a step below fails
    try:
        # The site's login page offers the provider; sign-up is gone.
        page.goto("/accounts/login/")
        expect(page.get_by_role("link", name="Sign up")).to_have_count(0)
        page.get_by_role("link", name="Sign in with Example SSO").click()

        # The provider's own login page (oidc-provider's), on its own port.
        page.wait_for_url(re.compile(re.escape(provider.issuer) + r"/interaction/"))
        page.locator("input[name=login]").fill("dana")
        page.locator("input[name=password]").fill("dana's password at the provider")
        page.get_by_role("button", name="Sign-in").click()

        # Back on the site, signed in as a user created just now.
        page.wait_for_url(server.url + "/")
        expect(page.locator("a.who")).to_have_text("dana")
        assert ExternalIdentity.objects.get(provider="oidc").user.email == "dana@example.org"

        # A team, the terms, and the starter's sample submission.
        page.goto("/teams/")
        page.get_by_label("Team name").fill("Dana's Data")
        page.get_by_role("button", name="Create team").click()
        expect(page.locator(".flash.success")).to_contain_text("Dana's Data")
        page.goto(f"/challenges/{challenge.pk}/")
        page.get_by_label("I have read and accept").check()
        page.get_by_role("button", name="Participate").click()
        expect(page.locator(".flash.success")).to_contain_text("takes part")
        page.get_by_role("link", name="Submit to Dev Phase").click()
        page.get_by_label("Submission file").set_input_files(
            str(starter_dir / "tabular_classification" / "sample_submission_dev.csv")
        )
        page.get_by_label("Method name").fill("sso sample")
        page.get_by_label("Tree ensemble").check()
        page.get_by_role("button", name="Upload and submit").click()
        expect(page.locator("#upload-result [data-status]")).to_have_text(
            "Finished", timeout=60_000
        )
        submission = Submission.objects.get()
        assert submission.created_by.username == "dana"
        assert submission.status == Submission.Status.FINISHED
        failed = False
    finally:
        if failed:
            saved = save_screenshots(context.pages, request.node.name)
            print(f"screenshots: {[str(p) for p in saved]}", file=sys.stderr)
            print(f"--- gunicorn log ---\n{server.log()[-4000:]}", file=sys.stderr)
            print(f"--- provider log ---\n{provider.log()[-2000:]}", file=sys.stderr)
        context.close()
        stop_web_server(server)
        provider.stop()

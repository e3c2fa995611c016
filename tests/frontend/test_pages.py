"""Server-rendered pages: who sees which challenges; bundle HTML is sanitised."""

from __future__ import annotations

import pytest
from django.test import Client

from challenges.models import Challenge
from challenges.services.bundles import challenge_load_bundle
from challenges.services.challenges import challenge_approve

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenges(users, host_teams, starter_zips):
    loaded = {
        name: challenge_load_bundle(
            source=path, user=users["alice"], host_team=host_teams["alice"]
        ).challenge
        for name, path in starter_zips.items()
    }
    challenge_approve(challenge=loaded["tabular_classification"], reviewer=users["admin"])
    Challenge.objects.update(published=True)
    return loaded


def client_for(users, who):
    client = Client()
    if who:
        client.force_login(users[who])
    return client


@pytest.mark.parametrize(
    ("who", "sees_pending"), [(None, False), ("charlie", False), ("bob", False), ("alice", True)]
)
def test_home_lists_approved_and_published_challenges(users, challenges, who, sees_pending):
    page = client_for(users, who).get("/")
    assert page.status_code == 200
    approved, pending = challenges["tabular_classification"], challenges["numerai_regression"]
    assert approved.title.encode() in page.content
    assert (pending.title.encode() in page.content) is sees_pending


def test_a_pending_challenge_page_is_a_404_for_outsiders(users, challenges):
    pending = challenges["numerai_regression"]
    assert client_for(users, "charlie").get(f"/challenges/{pending.pk}/").status_code == 404
    assert client_for(users, "alice").get(f"/challenges/{pending.pk}/").status_code == 200


def test_bundle_html_is_sanitised(users, challenges):
    challenge = challenges["tabular_classification"]
    Challenge.objects.filter(pk=challenge.pk).update(
        description='<p>Hello</p><script>alert("x")</script><img src=x onerror="alert(1)"><a href="javascript:alert(2)">x</a>'
    )
    page = client_for(users, None).get(f"/challenges/{challenge.pk}/")
    assert b"<p>Hello</p>" in page.content
    assert (
        b"<script>alert" not in page.content
        and b"onerror" not in page.content
        and b"javascript:" not in page.content
    )


def test_host_only_splits_are_not_named_to_participants(users, challenges):
    challenge = challenges["tabular_classification"]
    public = client_for(users, "charlie").get(f"/challenges/{challenge.pk}/").content.decode()
    hosts = client_for(users, "alice").get(f"/challenges/{challenge.pk}/").content.decode()

    def phases(page: str) -> str:
        return page.split('<h2 id="phases">Phases</h2>')[1].split('<section id="guidelines"')[0]

    assert "leaderboard/private/" not in phases(public)
    assert "leaderboard/private/" in phases(hosts)


def test_bundle_pages_with_their_own_heading_get_no_second_one(users, challenges):
    challenge = challenges["tabular_classification"]
    Challenge.objects.filter(pk=challenge.pk).update(
        evaluation_details="<h2>How we score</h2><p>x</p>", terms_and_conditions="<p>Be nice</p>"
    )
    page = client_for(users, None).get(f"/challenges/{challenge.pk}/").content.decode()
    assert "<h2>Evaluation</h2>" not in page and "<h2>How we score</h2>" in page
    assert "<h2>Terms and conditions</h2>" in page


def test_the_challenge_page_lists_prizes_and_phase_quotas(users, challenges):
    challenge = challenges["tabular_classification"]
    Challenge.objects.filter(pk=challenge.pk).update(
        prizes=[{"rank": 1, "amount": "1000 EUR", "description": "<b>gold</b>"}]
    )
    page = client_for(users, None).get(f"/challenges/{challenge.pk}/").content.decode()
    assert '<h2 id="prizes">Prizes</h2>' in page and "1000 EUR" in page
    assert "&lt;b&gt;gold&lt;/b&gt;" in page  # prize text is escaped, not HTML
    assert "<th>Per day</th>" in page and "<td>10</td>" in page


def test_logging_out_ends_the_session(users, challenges):
    client = client_for(users, "charlie")
    assert client.get("/teams/").status_code == 200
    assert client.post("/accounts/logout/")["Location"] == "/"
    assert client.get("/teams/").status_code == 302


def test_a_first_visit_explains_what_to_do(users, challenges):
    page = client_for(users, None).get("/").content.decode()
    assert "sign up" in page.lower() and "create or join a team" in page
    assert 'href="/accounts/signup/"' in page


def test_an_expired_form_gets_a_page_that_says_what_to_do(users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["charlie"])
    page = client.post("/teams/", {"action": "create", "create-name": "x"})
    assert page.status_code == 403
    assert b"This form has expired" in page.content and b"reload the page" in page.content


def test_the_challenge_page_names_the_runtime_of_its_code_phases(users, challenges):
    import platform

    numerai = challenges["numerai_regression"]
    challenge_approve(challenge=numerai, reviewer=users["admin"])
    page = client_for(users, "charlie").get(f"/challenges/{numerai.pk}/").content.decode()
    assert f"run your model with Python {platform.python_version()}" in page
    assert "<code>live_code</code>" in page and "scikit-learn" in page
    tabular = challenges["tabular_classification"]
    assert (
        "run your model"
        not in client_for(users, "charlie").get(f"/challenges/{tabular.pk}/").content.decode()
    )


def test_the_submit_page_of_a_code_phase_says_the_model_runs(users, challenges):
    from tests.workers.pipeline_helpers import participate

    numerai = challenges["numerai_regression"]
    challenge_approve(challenge=numerai, reviewer=users["admin"])
    participate(users["charlie"], numerai)
    client = client_for(users, "charlie")
    code = client.get(f"/challenges/{numerai.pk}/phases/live_code/submit/").content.decode()
    assert "This phase runs your model" in code and 'accept=".pkl"' in code
    files = client.get(f"/challenges/{numerai.pk}/phases/validation/submit/").content.decode()
    assert "This phase runs your model" not in files

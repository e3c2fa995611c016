"""Site-wide email domains: sign-up and taking part, with a challenge's own rule's matching."""

from __future__ import annotations

import pytest

from challenges.services.participation import ParticipationError, site_email_refusal

pytestmark = [pytest.mark.django_db]


def test_the_site_rule_matches_domains_and_subdomains_only(settings):
    settings.ALLOWED_EMAIL_DOMAINS = ["corp.example"]
    assert site_email_refusal("a@corp.example") == ""
    assert site_email_refusal("a@lab.corp.example") == ""
    assert "corp.example" in site_email_refusal("a@evilcorp.example")
    settings.ALLOWED_EMAIL_DOMAINS = []
    assert site_email_refusal("a@anywhere.example") == ""


def test_sign_up_outside_the_sites_domains_is_refused(settings, client, django_user_model):
    settings.ALLOWED_EMAIL_DOMAINS = ["corp.example"]
    answer = client.post(
        "/accounts/signup/",
        {
            "username": "zoe",
            "email": "zoe@gmail.example",
            "password1": "zoe-long-passphrase-1",
            "password2": "zoe-long-passphrase-1",
        },
    )
    assert answer.status_code == 200
    assert "open only to email addresses at corp.example" in answer.content.decode()
    assert not django_user_model.objects.filter(username="zoe").exists()


def test_taking_part_outside_the_sites_domains_is_refused(settings, users, host_teams):
    from challenges.services.participation import challenge_participate, participant_team_create
    from tests.challenges.test_participation import make_challenge

    challenge = make_challenge(host_teams["alice"], users["alice"])
    users["charlie"].email = "charlie@elsewhere.example"
    users["charlie"].save()
    team = participant_team_create(name="Outsiders", creator=users["charlie"])
    settings.ALLOWED_EMAIL_DOMAINS = ["corp.example"]
    with pytest.raises(ParticipationError, match="This site is open only"):
        challenge_participate(
            challenge=challenge, team=team, user=users["charlie"], accept_terms=True
        )
    assert not team.participations.exists()

    users["charlie"].email = "charlie@corp.example"
    users["charlie"].save()
    challenge_participate(challenge=challenge, team=team, user=users["charlie"], accept_terms=True)
    assert team.participations.count() == 1

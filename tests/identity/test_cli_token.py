"""SSO accounts have no password here: the CLI takes the token they make on the site."""

from __future__ import annotations

import json

import pytest
from rest_framework.authtoken.models import Token

from tests.test_cli import config, run  # noqa: F401  (the config fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sso_user(django_user_model):
    user = django_user_model.objects.create_user("dana", "dana@example.org")
    user.set_unusable_password()
    user.save()
    return user


def test_a_token_from_the_tokens_page_signs_the_cli_in(live_server, sso_user, config, capsys):  # noqa: F811
    token = Token.objects.create(user=sso_user)
    code, out, err = run(capsys, "login", live_server.url, "--token-stdin", stdin=token.key + "\n")
    assert code == 0, err
    assert json.loads(config.read_text()) == {"url": live_server.url, "token": token.key}
    code, _, err = run(capsys, "challenges")
    assert code == 0, err


def test_a_wrong_token_is_refused_with_the_way_to_a_good_one(live_server, config, capsys):  # noqa: F811
    code, _, err = run(capsys, "login", live_server.url, "--token-stdin", stdin="nope\n")
    assert code == 1 and "401" in err
    assert f"{live_server.url}/accounts/tokens/" in err and "--token-stdin" in err
    assert not config.exists()


def test_login_without_a_username_or_token_says_both_ways(live_server, config, capsys):  # noqa: F811
    code, _, err = run(capsys, "login", live_server.url)
    assert code == 2
    assert "USERNAME" in err and "/accounts/tokens/" in err

"""Finding 7: sign-up said "An account with this email exists already" (accounts could be
enumerated) and there was no password-change page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

pytestmark = pytest.mark.django_db


def _signup(username: str, email: str):
    return Client().post(
        "/accounts/signup/",
        {
            "username": username,
            "email": email,
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
        },
    )


def test_it_answers_sign_up_the_same_whether_or_not_the_email_is_known(users):
    known = _signup("newcomer1", "charlie@example.org")
    unknown = _signup("newcomer2", "nobody@example.org")
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert get_user_model().objects.filter(username__in=["newcomer1", "newcomer2"]).count() == 2
    # The owner of the known address hears about it; the newcomer learns nothing.
    (message,) = mail.outbox
    assert message.to == ["charlie@example.org"] and "newcomer1" in message.body


def test_it_changes_the_password_on_a_page(users):
    client = Client()
    client.force_login(users["charlie"])
    assert client.get("/accounts/password/").status_code == 200
    page = client.post(
        "/accounts/password/",
        {
            "old_password": "pw-charlie-123",
            "new_password1": "another-long-phrase-77",
            "new_password2": "another-long-phrase-77",
        },
        follow=True,
    )
    assert b"data-password-changed" in page.content
    users["charlie"].refresh_from_db()
    assert users["charlie"].check_password("another-long-phrase-77")


def test_it_sends_anonymous_visitors_of_the_password_page_to_log_in():
    response = Client().get("/accounts/password/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]

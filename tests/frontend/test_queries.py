"""List pages cost a fixed number of queries, however many rows they show."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.frontend.conftest import _finished

pytestmark = pytest.mark.django_db


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("role", "url"),
    [
        ("participant", "/challenges/{c}/submissions/"),
        ("host", "/host/challenges/{c}/submissions/"),
        ("host", "/host/challenges/{c}/submissions/?format=csv"),
        ("participant", "/challenges/{c}/phases/test/leaderboard/public/"),
        ("host", "/host/"),
    ],
)
def test_list_pages_do_not_query_per_row(world, client_as, users, role, url):
    url = url.format(c=world.challenge.pk)
    client = client_as(role)
    before = queries(client, url)
    test = world.challenge.phases.get(codename="test")
    for i in range(8):
        _finished(
            test,
            world.charlie_team if i % 2 else world.dave_team,
            users["charlie"] if i % 2 else users["dave"],
            scores={"public": {"Accuracy": i / 10, "Macro-F1": 0.1}},
            stdout="",
        )
    assert queries(client, url) == before

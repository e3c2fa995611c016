"""Finding 4: `?offset=99999999999999999999` on a leaderboard answered 500. Every
operation of the served OpenAPI schema is now walked with huge, negative, non-numeric
and NUL values in its path, its query (declared parameters and the usual numeric ones)
and its body; nothing may answer a server error."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.security.schema_walk import operations, path_values, request

pytestmark = pytest.mark.django_db

HOSTILE = ["99999999999999999999", "-1", "abc", "\x00", "1e309"]
# Numeric names any list might grow; sent to every operation, declared or not.
USUAL_QUERY = ["offset", "limit", "page", "page_size", "id", "order", "order_by", "scope"]
ROLES = {"anonymous": None, "participant": "charlie", "host": "alice", "admin": "admin"}


def _client(users, name):
    client = APIClient()
    if name:
        token, _ = Token.objects.get_or_create(user=users[name])
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_it_answers_400_not_500_to_a_huge_leaderboard_offset(world, api):
    url = f"/api/v1/challenges/{world.challenge.pk}/phases/test/splits/public/leaderboard/"
    for who in (None, "charlie"):
        client = api(who)
        client.raise_request_exception = False
        for value in ("99999999999999999999", "-1", "x", "\x00"):
            response = client.get(url, {"offset": value})
            assert response.status_code == 400, (who, value, response.content[:200])
            assert "offset" in response.json()


def test_it_never_answers_500_to_hostile_parameters_on_any_operation(world, users, settings):
    # The fuzz is about parameters, not about throttles: let every request through.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    ops = operations()
    assert len(ops) >= 40
    valid = path_values(world, users)
    failures, sent = [], 0
    for role, name in ROLES.items():
        client = _client(users, name)
        for op in ops:
            path_names = [p for p, where, _ in op.params if where == "path"]
            declared = [p for p, where, _ in op.params if where == "query"]
            query_names = set(declared) | set(USUAL_QUERY)
            for value in HOSTILE:
                attempts = [
                    (op.url(valid), dict.fromkeys(query_names, value), None),
                    (op.url(valid), None, dict.fromkeys(op.body_fields, value)),
                ]
                # Each declared parameter alone too: all at once, the first one validated
                # (limit) may answer 400 before a later one (offset) reaches the database.
                attempts += [(op.url(valid), {q: value}, None) for q in declared]
                attempts += [(op.url({**valid, p: value}), None, None) for p in path_names]
                for url, query, data in attempts:
                    response = request(client, op.method, url, query=query, data=data)
                    sent += 1
                    if response.status_code >= 500:
                        failures.append((role, op.key, url, query, data, response.status_code))
    print(f"fuzz: {sent} requests over {len(ops)} operations")
    assert not failures, failures[:10]


def test_it_never_answers_500_to_hostile_parameters_on_the_pages(world, client_as):
    challenge = world.challenge.pk
    pages = [
        "/",
        f"/challenges/{challenge}/",
        f"/challenges/{challenge}/submissions/",
        f"/challenges/{challenge}/phases/test/leaderboard/public/",
        f"/host/challenges/{challenge}/submissions/",
        f"/submissions/{world.charlie_sub.pk}/",
        "/teams/",
        "/host/",
    ]
    for role in ("anonymous", "participant", "host"):
        client = client_as(role)
        client.raise_request_exception = False
        for url in pages:
            for value in HOSTILE:
                query = dict.fromkeys([*USUAL_QUERY, "phase", "status", "team", "format"], value)
                response = client.get(url, query)
                assert response.status_code < 500, (role, url, value)
        for value in HOSTILE[:2]:
            response = client.get(f"/submissions/{value}/")
            assert response.status_code < 500, (role, value)

"""Finding 4: `?offset=99999999999999999999` on a leaderboard answered 500. Every
operation of the served OpenAPI schema is now walked with huge, negative, non-numeric
and NUL values in its path, its query (declared parameters and the usual numeric ones)
and its body; nothing may answer a server error."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.security.schema_walk import evalai_urls, operations, path_values, request

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


# Issue 22: the other shapes. Deep JSON (as a body and inside fields that hold JSON),
# ids far beyond a bigint in every id-like place (path, query, body as text and as a JSON
# number, headers, tus metadata), and headers a client controls.
HUGE = "99999999999999999999"
DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
LONG_DIGITS = "9" * 5000  # past Python's int() digit limit
JSON_BODIES = [DEEP, DEEP_OBJECT, "[" * 65 + "]" * 65, '{"x": NaN}']
FIELD_VALUES = [DEEP, HUGE, LONG_DIGITS, "\u202e"]
HEADERS = {
    "Range": f"bytes=0-{HUGE}",
    "Upload-Length": HUGE,
    "Upload-Offset": HUGE,
    "Upload-Checksum": "sha256 " + "A" * 5000,
    "If-Modified-Since": HUGE,
    "If-None-Match": DEEP,
    "X-Forwarded-For": HUGE,
    "Content-Length-Hint": LONG_DIGITS,
}
AUTHORIZATION = [f"Token {HUGE}", f"Bearer {HUGE}", "Token " + "\x00" * 8, "Bearer " + DEEP]
TUS_KEYS = ["challenge", "phase", "host_team", "meta_attributes", "is_public", "method_name"]
TUS_VALUES = [HUGE, DEEP, "-1", LONG_DIGITS, "\u202e"]


def _tus_metadata(**fields: str) -> str:
    import base64

    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def test_it_never_answers_500_to_deep_json_huge_ids_or_hostile_headers(world, users, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    settings.THROTTLE_RATES = dict.fromkeys(settings.THROTTLE_RATES, "")
    ops = operations()
    valid = path_values(world, users)
    huge_paths = dict.fromkeys(valid, HUGE)
    failures, sent = [], 0

    def send(role, method, url, **kwargs):
        nonlocal sent
        response = request(clients[role], method, url, **kwargs)
        sent += 1
        if response.status_code >= 500:
            failures.append((role, method, url, str(kwargs)[:200], response.status_code))

    clients = {role: _client(users, name) for role, name in ROLES.items()}
    for role in ROLES:
        for op in ops:
            url = op.url(valid)
            if op.method in ("POST", "PUT", "PATCH"):
                for body in JSON_BODIES:
                    send(role, op.method, url, raw=body)
                for value in FIELD_VALUES:
                    fields = dict.fromkeys(op.body_fields, value)
                    send(role, op.method, url, data=fields, format="multipart")
                # Ids as JSON numbers beyond a bigint, and nested values in every field.
                numbers = "{" + ",".join(f'"{f}": {HUGE}' for f in op.body_fields) + "}"
                send(role, op.method, url, raw=numbers)
                nested = "{" + ",".join(f'"{f}": {DEEP}' for f in op.body_fields) + "}"
                send(role, op.method, url, raw=nested)
            send(role, op.method, url, headers=HEADERS)
            send(role, op.method, op.url(huge_paths), query=dict.fromkeys(USUAL_QUERY, HUGE))
        for authorization in AUTHORIZATION:
            send(role, "GET", "/api/v1/teams/", headers={"Authorization": authorization})
            send(
                role,
                "GET",
                "/api/participants/participant_team",
                headers={"Authorization": authorization},
            )
        # tus: every metadata key that names something, with every hostile value, per kind.
        for kind in ("submission", "bundle", "public_data"):
            for key in TUS_KEYS:
                for value in TUS_VALUES:
                    fields = {"kind": kind, "challenge": valid["challenge_id"], "phase": "test"}
                    fields.update({"filename": "p.csv", "sha256": "0" * 64, key: value})
                    tus = {"Tus-Resumable": "1.0.0", "Upload-Length": "10"}
                    tus["Upload-Metadata"] = _tus_metadata(**fields)
                    send(role, "POST", "/api/v1/uploads/", raw=b"", headers=tus)
        # EvalAI's routes: huge ids in every group, and deep or huge bodies on real ones.
        for method in ("GET", "POST", "PATCH", "DELETE"):
            for url in evalai_urls(huge_paths):
                send(role, method, url)
        for url in evalai_urls({**valid, "challenge_pk": valid["challenge_id"], "pk": "1"}):
            for body in (DEEP, '{"submission": ' + HUGE + "}", '{"team_name": "' + DEEP + '"}'):
                send(role, "POST", url, raw=body)
            for value in (DEEP, HUGE):
                fields = {
                    "submission_metadata": value,
                    "submission": value,
                    "num_file_chunks": value,
                    "team_name": value,
                    "input_file": value,
                }
                send(role, "POST", url, data=fields, format="multipart")
            send(role, "GET", url, query={"page": HUGE, "page_size": HUGE})
    print(f"fuzz (issue 22 shapes): {sent} requests, {len(failures)} server errors")
    assert sent > 2500
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

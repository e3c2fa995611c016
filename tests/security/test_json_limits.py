"""Issue 22: a JSON body nested 1,000 levels deep answered 500 (RecursionError) on every
JSON endpoint and in multipart fields that hold JSON; a tus `challenge` of 20 digits
answered 500 (OverflowError on SQLite). Now every parser bounds depth and size and every
id is bounded before it reaches the database, each saying what was wrong."""

from __future__ import annotations

import base64
import io

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from challenges.api.parsers import BoundedJSONParser
from challenges.ids import MAX_ID, InvalidId, is_id, parse_id
from challenges.json_limits import MAX_DEPTH, JSONLimitError, json_loads_bounded
from evalserver.converters import IdConverter

DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
HUGE = "99999999999999999999"


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_it_refuses_json_nested_deeper_than_the_limit_and_says_where():
    with pytest.raises(JSONLimitError, match="JSON nested deeper than 64 levels in meta"):
        json_loads_bounded(DEEP, where="meta")
    with pytest.raises(JSONLimitError, match="deeper than 64"):
        json_loads_bounded(DEEP_OBJECT, where="meta")
    edge = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert json_loads_bounded(edge, where="x") is not None
    with pytest.raises(JSONLimitError):
        json_loads_bounded("[" + edge + "]", where="x")


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '{"a": "' + "[" * 500 + '\\"' + "{" * 500 + '"}'
    assert json_loads_bounded(text, where="x")["a"].startswith("[[[")


def test_it_refuses_too_long_json_nan_and_broken_json_with_a_message():
    with pytest.raises(JSONLimitError, match="longer than 10 characters in f"):
        json_loads_bounded('{"a": "0123456789"}', where="f", max_chars=10)
    with pytest.raises(JSONLimitError, match="not valid JSON in f"):
        json_loads_bounded('{"a": NaN}', where="f")
    with pytest.raises(JSONLimitError, match="not valid JSON in f"):
        json_loads_bounded("{", where="f")


@pytest.mark.parametrize("raw", ["0", "1", "42", "9" * 18, 7, MAX_ID])
def test_ids_of_up_to_18_digits_are_ids(raw):
    assert parse_id(raw, field="x") == int(raw)


@pytest.mark.parametrize(
    "raw", [HUGE, "9" * 19, "-1", "1e3", "", "١٢", " 1", True, -1, MAX_ID + 1, None, 1.5]
)
def test_anything_else_is_refused_naming_the_field(raw):
    assert not is_id(raw)
    with pytest.raises(InvalidId, match="team must be an id"):
        parse_id(raw, field="team")


def _patterns(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def test_every_route_bounds_its_ids_and_every_json_parser_is_bounded():
    unbounded, plain_json = [], []
    for route, entry in _patterns(get_resolver()):
        converters = getattr(entry.pattern, "converters", {})
        if any(type(c).__name__ == "IntConverter" for c in converters.values()):
            unbounded.append(route)
        if "[0-9]+" in route or r"\d+" in route:
            unbounded.append(route)
        view = getattr(entry.callback, "view_class", None) or getattr(entry.callback, "cls", None)
        for parser in getattr(view, "parser_classes", None) or []:
            if issubclass(parser, JSONParser) and not issubclass(parser, BoundedJSONParser):
                plain_json.append(route)
    assert not unbounded, unbounded
    assert not plain_json, plain_json
    assert IdConverter.regex == "[0-9]{1,18}"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT])
def test_a_deep_json_body_gets_a_400_that_says_so_even_without_signing_in(api, body):
    client = api(None)
    client.raise_request_exception = False
    response = client.post("/api/v1/auth/token/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested deeper than 64 levels in the request body" in response.json()["detail"]


@pytest.mark.django_db
def test_a_json_body_over_the_size_limit_gets_a_400(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api(None).post(
        "/api/v1/auth/token/", '{"username": "' + "x" * 2000 + '"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert "larger than 1000 bytes" in response.json()["detail"]
    # The parser keeps the limit for a stream nobody read before it.
    with pytest.raises(ParseError, match="larger than 1000 bytes"):
        BoundedJSONParser().parse(io.BytesIO(b"[" + b" " * 2000 + b"]"))


@pytest.mark.django_db
def test_deep_meta_attributes_in_a_multipart_submission_get_a_400(world, api):
    client = api("charlie")
    client.raise_request_exception = False
    url = f"/api/v1/challenges/{world.challenge.pk}/phases/test/submissions/"
    response = client.post(
        url,
        {"file": io.BytesIO(b"id,label\n1,1"), "meta_attributes": DEEP},
        format="multipart",
    )
    assert response.status_code == 400, response.content[:300]
    assert "nested deeper than 64 levels in meta_attributes" in str(response.json())


@pytest.mark.django_db
def test_tus_metadata_with_a_huge_challenge_or_deep_meta_attributes_gets_a_400(world, api):
    client = api("charlie")
    client.raise_request_exception = False

    def create(**meta):
        fields = {"kind": "submission", "phase": "test", "filename": "p.csv", "sha256": "0" * 64}
        fields.update(meta)
        header = ",".join(f"{k} {_b64(v)}" for k, v in fields.items())
        return client.post(
            "/api/v1/uploads/",
            HTTP_UPLOAD_LENGTH="10",
            HTTP_UPLOAD_METADATA=header,
            HTTP_TUS_RESUMABLE="1.0.0",
        )

    response = create(challenge=HUGE)
    assert response.status_code == 400, response.content[:300]
    assert "at most 18 digits" in response.json()["detail"]
    response = create(challenge=str(world.challenge.pk), meta_attributes=DEEP)
    assert response.status_code == 400, response.content[:300]
    assert "nested deeper than 64 levels in meta_attributes" in response.json()["detail"]


@pytest.mark.django_db
def test_huge_ids_in_paths_are_404_and_in_bodies_400(world, api):
    client = api("charlie")
    client.raise_request_exception = False
    assert client.get(f"/api/v1/submissions/{HUGE}/").status_code == 404
    assert client.get(f"/api/challenges/challenge/{HUGE}/challenge_phase").status_code == 404
    response = client.post(
        f"/api/v1/challenges/{world.challenge.pk}/participate/",
        {"team": HUGE, "accept_terms": True},
        format="json",
    )
    assert response.status_code == 400 and "team" in response.json(), response.content[:300]


def test_a_form_picking_a_row_by_id_refuses_a_huge_one():
    from challenges.models import HostTeam
    from frontend.forms import IdChoiceField

    field = IdChoiceField(queryset=HostTeam.objects.none())
    with pytest.raises(Exception, match="valid choice") as caught:
        field.clean(HUGE)
    assert type(caught.value).__name__ == "ValidationError"


def test_a_bundle_leaderboard_schema_of_deep_json_is_a_bundle_error():
    import yaml

    from challenges.bundle import BundleError, load_bundle
    from evalserver.testing import script_bundle_zip
    from tests.workers.pipeline_helpers import GOOD_EVALUATE, SCRIPT_CONFIG

    config = yaml.safe_load(yaml.safe_dump(SCRIPT_CONFIG))
    config["leaderboard"][0]["schema"] = DEEP
    data = script_bundle_zip(config, evaluate_source=GOOD_EVALUATE, files={})
    with pytest.raises(BundleError) as caught:
        load_bundle(io.BytesIO(data))
    messages = " ".join(str(p.as_dict()) for p in caught.value.errors)
    assert "JSON nested deeper than 64 levels in leaderboard" in messages

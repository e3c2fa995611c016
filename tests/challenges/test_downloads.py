"""Downloads with Range, ETag, If-Range and Last-Modified; offloaded or redirected when the
operator or the storage says so."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.storage import FileSystemStorage

from challenges.api.downloads import parse_range
from tests.workers.pipeline_helpers import load_approved, participate, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenge(users, host_teams, starter_zips):
    challenge = load_approved(starter_zips["tabular_classification"], users, host_teams["alice"])
    participate(users["charlie"], challenge)
    participate(users["bob"], challenge)
    return challenge


@pytest.fixture
def train(api, challenge):
    listing = api("charlie").get(f"/api/v1/challenges/{challenge.pk}/phases/dev/data/").json()
    (item,) = [i for i in listing if i["name"] == "train.csv"]
    whole = api("charlie").get(item["url"])
    item["content"] = b"".join(whole.streaming_content)
    return item


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, (0, 4)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=2-100", 10, (2, 9)),
        ("bytes=10-", 10, False),
        ("bytes=-0", 10, False),
        ("bytes=0-1,4-5", 10, None),  # several ranges: the whole file
        ("items=0-1", 10, None),
        ("bytes=5-2", 10, None),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


def test_a_full_download_says_it_accepts_ranges_with_the_sha256_as_etag(api, challenge, train):
    response = api("charlie").get(train["url"])
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"{train["sha256"]}"'
    assert response["Last-Modified"]
    assert int(response["Content-Length"]) == train["size"]
    assert hashlib.sha256(train["content"]).hexdigest() == train["sha256"]


def test_a_range_is_a_206_with_content_range(api, challenge, train):
    response = api("charlie").get(train["url"], HTTP_RANGE="bytes=10-19")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 10-19/{train['size']}"
    assert response["Content-Length"] == "10"
    assert b"".join(response.streaming_content) == train["content"][10:20]


def test_an_unsatisfiable_range_is_a_416(api, challenge, train):
    response = api("charlie").get(train["url"], HTTP_RANGE=f"bytes={train['size']}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{train['size']}"


def test_if_range_with_another_etag_sends_the_whole_file(api, challenge, train):
    client = api("charlie")
    stale = client.get(train["url"], HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"' + "0" * 64 + '"')
    assert stale.status_code == 200
    assert b"".join(stale.streaming_content) == train["content"]
    fresh = client.get(train["url"], HTTP_RANGE="bytes=10-", HTTP_IF_RANGE=f'"{train["sha256"]}"')
    assert fresh.status_code == 206
    dated = client.get(train["url"], HTTP_RANGE="bytes=10-", HTTP_IF_RANGE=fresh["Last-Modified"])
    assert dated.status_code == 206


def test_if_none_match_is_a_304(api, challenge, train):
    response = api("charlie").get(train["url"], HTTP_IF_NONE_MATCH=f'"{train["sha256"]}"')
    assert response.status_code == 304


def test_a_front_proxy_can_send_the_bytes(api, challenge, train, settings):
    settings.DOWNLOAD_OFFLOAD_HEADER = "X-Accel-Redirect"
    response = api("charlie").get(train["url"])
    assert response.status_code == 200
    assert response["X-Accel-Redirect"].startswith("/protected-media/challenges/")
    assert response.content == b""
    settings.DOWNLOAD_OFFLOAD_HEADER = "X-Sendfile"
    response = api("charlie").get(train["url"])
    assert response["X-Sendfile"].startswith(str(settings.MEDIA_ROOT))


def test_storage_without_paths_redirects_to_a_short_lived_url(
    api, challenge, train, monkeypatch, settings
):
    """What S3Storage looks like to the view: no path(), url() with an expiry."""

    def no_path(self, name):
        raise NotImplementedError("This backend doesn't support absolute paths.")

    def presigned(self, name, expire=None):
        return f"http://127.0.0.1:9/{name}?e={expire}"

    monkeypatch.setattr(FileSystemStorage, "path", no_path)
    monkeypatch.setattr(FileSystemStorage, "url", presigned)
    response = api("charlie").get(train["url"])
    assert response.status_code == 302
    assert response["Location"].endswith(f"?e={settings.DOWNLOAD_URL_MAX_AGE_S}")
    assert response["ETag"] == f'"{train["sha256"]}"'


def test_a_team_downloads_its_own_submission_file_and_no_one_else_does(api, challenge):
    content = b"id,label\n" + b"".join(b"%d,1\n" % i for i in range(500))
    created = submit(api("charlie"), challenge, "dev", content)
    assert created.status_code == 201, created.content
    url = f"/api/v1/submissions/{created.json()['id']}/file/"
    whole = api("charlie").get(url)
    assert whole.status_code == 200
    assert whole["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert b"".join(whole.streaming_content) == content
    tail = api("charlie").get(url, HTTP_RANGE="bytes=-100")
    assert tail.status_code == 206
    assert b"".join(tail.streaming_content) == content[-100:]
    assert api("alice").get(url).status_code == 200  # host
    assert api("bob").get(url).status_code == 404  # another team
    assert api(None).get(url).status_code == 401

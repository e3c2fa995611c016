"""Public data: the files a phase lists, for the teams that accepted the terms and for hosts."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from tests.workers.pipeline_helpers import load_approved, participate

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenge(users, host_teams, starter_zips, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    challenge = load_approved(starter_zips["tabular_classification"], users, host_teams["alice"])
    participate(users["charlie"], challenge)
    return challenge


def data_url(challenge, phase="dev", name=""):
    return f"/api/v1/challenges/{challenge.pk}/phases/{phase}/data/{name}"


@pytest.mark.parametrize(
    ("who", "status"),
    [
        (None, 401),  # anonymous
        ("bob", 403),  # a host of another challenge, not taking part
        ("charlie", 200),  # his team accepted the terms
        ("alice", 200),  # host
        ("admin", 200),
    ],
)
def test_the_list_is_for_participants_and_hosts(api, challenge, who, status):
    response = api(who).get(data_url(challenge))
    assert response.status_code == status, response.content
    if status == 200:
        names = [item["name"] for item in response.json()]
        assert names == ["train.csv", "dev_features.csv"]
    if status == 403:
        assert "accept its terms" in response.json()["detail"]


def test_a_participant_downloads_the_file_the_bundle_holds(api, challenge, starter_zips):
    (item,) = [
        i for i in api("charlie").get(data_url(challenge)).json() if i["name"] == "train.csv"
    ]
    response = api("charlie").get(data_url(challenge, name="train.csv"))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(starter_zips["tabular_classification"]) as zf:
        (entry,) = [n for n in zf.namelist() if n.endswith("data/train.csv")]
        expected = zf.read(entry)
    assert body == expected
    assert hashlib.sha256(body).hexdigest() == item["sha256"] == response["X-Content-SHA256"]
    assert item["size"] == len(body)
    assert item["url"].endswith(data_url(challenge, name="train.csv"))


@pytest.mark.parametrize(
    "name", ["nope.csv", "..%2F..%2Fsettings.py", "%2Fetc%2Fpasswd", "annotations.csv"]
)
def test_unknown_or_path_like_names_are_not_found(api, challenge, name):
    response = api("charlie").get(data_url(challenge, name=name))
    assert response.status_code == 404


def test_a_hidden_phase_and_an_unknown_challenge_are_not_found(api, challenge):
    challenge.phases.filter(codename="dev").update(is_public=False)
    assert api("charlie").get(data_url(challenge)).status_code == 404
    assert api("alice").get(data_url(challenge)).status_code == 200
    assert api("charlie").get("/api/v1/challenges/999999/phases/dev/data/").status_code == 404

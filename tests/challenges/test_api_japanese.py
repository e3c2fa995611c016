"""The API answers a Japanese reader's errors in Japanese (LocaleMiddleware applies to
/api/ too; DRF's own messages come from its ja catalogue), while its data stays as is:
field names, codes and ISO 8601 times in UTC. Names in any script round-trip."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from challenges.models import Challenge, ParticipantTeam
from tests.challenges import bundle_factory as bf

pytestmark = pytest.mark.django_db

JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}


def test_drf_and_our_error_details_follow_accept_language(api, users):
    anonymous = api(None).get("/api/v1/host-teams/", **JA)
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"] == "認証情報が含まれていません。"
    missing = api("alice").get("/api/v1/submissions/999999/", **JA)
    assert missing.status_code == 404 and missing.json()["detail"] == "見つかりません。"
    english = api("alice").get("/api/v1/submissions/999999/", HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["detail"] == "Not found."


def test_a_broken_bundles_problems_come_back_in_japanese(api, host_teams):
    def break_it(config):
        config["challenge_phases"][1]["codename"] = config["challenge_phases"][0]["codename"]

    zipped = io.BytesIO(bf.with_config(break_it))
    answer = api("alice").post("/api/v1/challenges/", {"file": zipped}, format="multipart", **JA)
    assert answer.status_code == 400
    body = answer.json()
    assert "何も読み込まれていません" in body["detail"]
    duplicate = next(e for e in body["errors"] if e["key"] == "challenge_phases[1].codename")
    assert "すでに challenge_phases[0] で使われています" in duplicate["message"]
    # The locating parts stay data: the file inside the zip and the key path.
    assert duplicate["file"] == "challenge_config.yaml"
    assert not Challenge.objects.exists()


def test_a_japanese_host_team_name_round_trips_and_refusals_quote_it(api, users):
    name = "データ分析部 🧪（本社）"
    created = api("charlie").post("/api/v1/host-teams/", {"name": name}, format="json")
    assert created.status_code == 201 and created.json()["name"] == name
    assert [t["name"] for t in api("charlie").get("/api/v1/host-teams/").json()] == [name]
    # bob naming charlie's team: refused, in Japanese, with the name as typed.
    refused = api("bob").post(
        "/api/v1/challenges/",
        {"file": io.BytesIO(bf.build()), "host_team": name},
        format="multipart",
        **JA,
    )
    assert refused.status_code == 403
    assert name in refused.json()["detail"] and "メンバーではありません" in refused.json()["detail"]


def test_participant_teams_keep_full_width_and_combining_names(api, users):
    name = "ＡＩチーム\u3099 🚀"
    created = api("charlie").post("/api/v1/teams/", {"name": name}, format="json")
    assert created.status_code == 201, created.content
    assert ParticipantTeam.objects.get(pk=created.json()["id"]).name == name


def test_api_times_stay_utc_iso_in_japanese(api, host_teams, starter_zips):
    with open(starter_zips["tabular_classification"], "rb") as fh:
        made = (
            api("alice").post("/api/v1/challenges/", {"file": fh}, format="multipart", **JA).json()
        )
    challenge = api("alice").get(f"/api/v1/challenges/{made['id']}/", **JA).json()
    stamp = challenge["end_date"]
    assert dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).utcoffset() == dt.timedelta(0)

"""Names in any script: a Japanese team, method or file name (with emoji, full-width
forms and combining marks) survives pages, the API, CSV downloads and their file names.

The cast of tests/frontend/conftest.py, with charlie's team and submission renamed.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from urllib.parse import quote

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from challenges.attachments import ascii_fallback, content_disposition
from challenges.models import ParticipantTeam, Submission
from challenges.services.storage import safe_basename

pytestmark = pytest.mark.django_db

TEAM = "花子チーム 🚀"
# Half-width katakana, a full-width plus and a combining voiced mark (カ + U+3099 = ガ).
METHOD = "ﾒｿｯﾄﾞ＋カ\u3099"
FILE = '予測 "結果"①.csv'
JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}


@pytest.fixture
def named(world):
    ParticipantTeam.objects.filter(pk=world.charlie_team.pk).update(name=TEAM)
    Submission.objects.filter(pk=world.charlie_sub.pk).update(method_name=METHOD, file_name=FILE)
    return world


def _host(users) -> Client:
    client = Client()
    client.login(username="alice", password="pw-alice-123")
    return client


def test_japanese_team_and_method_names_show_in_pages_and_the_api(named, api, client_as):
    page = client_as("participant").get(f"/submissions/{named.charlie_sub.pk}/", **JA)
    assert page.status_code == 200
    assert METHOD in page.content.decode() and TEAM in page.content.decode()
    data = api("charlie").get(f"/api/v1/submissions/{named.charlie_sub.pk}/").json()
    assert data["method_name"] == METHOD and data["file_name"] == FILE
    teams = api("charlie").get("/api/v1/teams/").json()
    names = [t["name"] for t in (teams["results"] if isinstance(teams, dict) else teams)]
    assert TEAM in names


def test_the_hosts_csv_has_the_names_and_an_excel_variant_with_a_bom(named, users):
    url = f"/host/challenges/{named.challenge.pk}/submissions/?format=csv"
    plain = _host(users).get(url).content
    assert not plain.startswith(b"\xef\xbb\xbf")
    assert TEAM in plain.decode("utf-8") and METHOD in plain.decode("utf-8")
    excel = _host(users).get(url + "&excel=1")
    # Excel picks UTF-8 only from the byte-order mark; without it a Japanese Windows
    # reads cp932 and the names turn into mojibake.
    assert excel.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(excel.content.decode("utf-8-sig"))))
    assert rows[0][0] == plain.decode().splitlines()[0].split(",")[0]
    assert any(TEAM in row for row in rows)


def test_the_leaderboard_csv_offers_the_excel_variant(named, users):
    url = reverse("api-leaderboard-csv", args=[named.challenge.pk, "test", "public"])
    host = _host(users)
    assert not host.get(url).content.startswith(b"\xef\xbb\xbf")
    excel = host.get(url + "?excel=1")
    assert excel.status_code == 200 and excel.content.startswith(b"\xef\xbb\xbf")
    assert TEAM in excel.content.decode("utf-8-sig")
    assert excel["Content-Disposition"].startswith('attachment; filename="leaderboard-')


def test_pages_link_the_excel_csv(named, users):
    page = _host(users).get(f"/host/challenges/{named.challenge.pk}/", **JA).content.decode()
    assert "Excel 用 CSV" in page and "format=csv&amp;excel=1" in page


def test_a_japanese_file_name_downloads_under_its_name(named, api):
    default_storage.save(named.charlie_sub.input_file.name, ContentFile(b"id,label\n1,0\n"))
    answer = api("charlie").get(f"/api/v1/submissions/{named.charlie_sub.pk}/file/")
    assert answer.status_code == 200
    header = answer["Content-Disposition"]
    assert header.isascii()
    # RFC 6266: an ASCII fallback for old clients, and the real name as RFC 5987 UTF-8.
    assert header.startswith('attachment; filename="')
    assert f"filename*=UTF-8''{quote(safe_basename(FILE), safe='')}" in header
    assert "結果" in safe_basename(FILE)


def test_content_disposition_keeps_ascii_names_plain_and_escapes_the_rest():
    assert content_disposition("leaderboard-1.csv") == 'attachment; filename="leaderboard-1.csv"'
    header = content_disposition("リーダーボード-開発.csv")
    assert header == (
        'attachment; filename="download.csv"; '
        "filename*=UTF-8''%E3%83%AA%E3%83%BC%E3%83%80%E3%83%BC%E3%83%9C%E3%83%BC%E3%83%89-"
        "%E9%96%8B%E7%99%BA.csv"
    )
    # Quotes and line breaks cannot break out of the header.
    assert "\n" not in content_disposition('a"\nb.csv')
    assert content_disposition('a"b.csv') == 'attachment; filename="a\\"b.csv"'
    # NFD from a Mac arrives as NFC; accents fold into the fallback.
    nfd = unicodedata.normalize("NFD", "Café ガ.csv")
    assert content_disposition(nfd).endswith(quote("Café ガ.csv", safe=""))
    assert ascii_fallback("Café ガ.csv") == "Cafe.csv"
    assert ascii_fallback("ｆｕｌｌ.txt") == "full.txt"

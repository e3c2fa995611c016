"""Pages in the reader's language and time zone.

The cast of tests/frontend/conftest.py; charlie reads Japanese in Tokyo where a test
says so, everyone else English in UTC (the site's defaults here).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.test import Client
from django.utils import timezone, translation

from challenges.models import Challenge, UserProfile
from frontend.templatetags.when import closes, opens, when

pytestmark = pytest.mark.django_db

JA = {"HTTP_ACCEPT_LANGUAGE": "ja,en;q=0.5"}


def test_pages_follow_the_browsers_accept_language(world):
    page = Client().get("/", **JA).content.decode()
    assert '<html lang="ja"' in page
    assert "ログイン" in page and "新規登録" in page and "開催中" in page
    assert ">Log in<" not in page
    english = Client().get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en"' in english and ">Log in<" in english


def test_form_errors_and_labels_are_japanese(world):
    answer = Client().post("/accounts/signup/", {"username": ""}, **JA)
    page = answer.content.decode()
    assert answer.status_code == 200
    assert "メールアドレス" in page  # our label
    assert "この項目は必須です。" in page  # Django's own message, in Japanese


def test_the_switcher_sets_the_language_for_this_browser(world):
    browser = Client()
    answer = browser.post("/i18n/setlang/", {"language": "ja", "next": "/teams/"})
    assert answer.status_code == 302 and answer["Location"] == "/teams/"
    assert "ログイン" in browser.get("/").content.decode()


def test_the_switcher_is_remembered_for_the_person_wherever_they_sign_in(world, users):
    laptop = Client()
    assert laptop.login(username="charlie", password="pw-charlie-123")
    laptop.post("/i18n/setlang/", {"language": "ja", "next": "/"})
    assert UserProfile.objects.get(user=users["charlie"]).language == "ja"

    # Another browser, which asks for English: signing in brings Japanese back.
    phone = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert "Log in" in phone.get("/accounts/login/").content.decode()
    answer = phone.post(
        "/accounts/login/", {"username": "charlie", "password": "pw-charlie-123"}, follow=True
    )
    page = answer.content.decode()
    assert '<html lang="ja"' in page and "チーム" in page
    # The choice outlives the session on that browser too.
    assert phone.cookies["django_language"].value == "ja"


def test_the_switcher_refuses_an_unknown_language_without_an_error(world, users, client_as):
    browser = client_as("participant")
    answer = browser.post("/i18n/setlang/", {"language": "xx-evil", "next": "/"})
    assert answer.status_code == 302
    assert not UserProfile.objects.filter(user=users["charlie"]).exclude(language="").exists()
    assert '<html lang="en"' in browser.get("/").content.decode()


def test_dates_show_in_the_persons_time_zone_with_the_zone_named(world, users, client_as):
    end = dt.datetime(2031, 3, 1, 15, 30, tzinfo=dt.UTC)
    Challenge.objects.filter(pk=world.challenge.pk).update(end_date=end)
    url = f"/challenges/{world.challenge.pk}/"
    assert "2031-03-01 15:30 UTC" in client_as("participant").get(url).content.decode()

    UserProfile.objects.create(user=users["charlie"], time_zone="Asia/Tokyo", language="ja")
    tokyo = Client()
    tokyo.login(username="charlie", password="pw-charlie-123")
    page = tokyo.get(url).content.decode()
    assert "2031/03/02 00:30 JST" in page  # the next day in Tokyo, Japanese order
    assert 'title="Asia/Tokyo"' in page and "時刻は Asia/Tokyo で表示しています" in page


def test_an_anonymous_browser_reads_dates_in_its_own_zone_from_the_cookie(world):
    end = dt.datetime(2031, 3, 1, 15, 30, tzinfo=dt.UTC)
    Challenge.objects.filter(pk=world.challenge.pk).update(end_date=end)
    browser = Client()
    browser.cookies["evalserver_tz"] = "America/New_York"
    page = browser.get(f"/challenges/{world.challenge.pk}/").content.decode()
    assert "2031-03-01 10:30 EST" in page
    browser.cookies["evalserver_tz"] = "../../etc/passwd"  # not a zone: the site's
    page = browser.get(f"/challenges/{world.challenge.pk}/").content.decode()
    assert "2031-03-01 15:30 UTC" in page


def test_the_browsers_zone_becomes_the_persons_on_the_first_visit_only(world, users):
    browser = Client()
    browser.login(username="charlie", password="pw-charlie-123")
    browser.cookies["evalserver_tz"] = "Europe/Berlin"
    browser.get("/")
    assert UserProfile.objects.get(user=users["charlie"]).time_zone == "Europe/Berlin"
    # A later browser elsewhere does not overwrite it.
    browser.cookies["evalserver_tz"] = "Asia/Tokyo"
    browser.get("/")
    assert UserProfile.objects.get(user=users["charlie"]).time_zone == "Europe/Berlin"


def test_the_preferences_page_saves_language_and_zone(world, users, client_as):
    browser = client_as("participant")
    answer = browser.post(
        "/accounts/preferences/", {"language": "ja", "time_zone": "Asia/Tokyo"}, follow=True
    )
    page = answer.content.decode()
    assert "保存しました" in page and "Asia/Tokyo" in page
    profile = UserProfile.objects.get(user=users["charlie"])
    assert (profile.language, profile.time_zone) == ("ja", "Asia/Tokyo")
    refused = browser.post("/accounts/preferences/", {"language": "ja", "time_zone": "Mars/Base"})
    assert refused.status_code == 200 and "Mars/Base" not in str(
        UserProfile.objects.get(user=users["charlie"]).time_zone
    )


def test_the_api_stays_utc_iso_8601_whatever_the_persons_zone(world, users, api):
    UserProfile.objects.create(user=users["charlie"], time_zone="Asia/Tokyo")
    data = api("charlie").get(f"/api/v1/submissions/{world.charlie_sub.pk}/").json()
    stamp = data["submitted_at"]
    parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.utcoffset() == dt.timedelta(0)
    assert parsed == world.charlie_sub.submitted_at


def test_the_hosts_csv_names_its_zone_and_gives_offsets(world, users):
    UserProfile.objects.create(user=users["alice"], time_zone="Asia/Tokyo")
    host = Client()
    host.login(username="alice", password="pw-alice-123")
    answer = host.get(f"/host/challenges/{world.challenge.pk}/submissions/?format=csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert "submitted_at (Asia/Tokyo)" in rows[0] and "finished_at (Asia/Tokyo)" in rows[0]
    submitted = rows[1][rows[0].index("submitted_at (Asia/Tokyo)")]
    assert submitted.endswith("+09:00")


def test_deadlines_read_relatively_in_each_language():
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    in_3_days = now + dt.timedelta(days=3, hours=2)
    with translation.override("en"):
        assert closes(in_3_days, now) == "closes in 3 days"
        assert closes(now + dt.timedelta(hours=1, minutes=5), now) == "closes in 1 hour"
        assert closes(now - dt.timedelta(days=2), now) == "closed 2 days ago"
        assert opens(now + dt.timedelta(minutes=30), now) == "opens in 30 minutes"
        assert opens(now - dt.timedelta(minutes=30), now) == ""
    with translation.override("ja"):
        assert closes(in_3_days, now) == "あと3日で締め切り"
        assert closes(now - dt.timedelta(days=2), now) == "2日前に締め切り"
        assert opens(now + dt.timedelta(hours=5), now) == "あと5時間で開始"


def test_when_formats_for_the_language_and_names_the_zone():
    moment = dt.datetime(2030, 7, 1, 3, 4, 5, tzinfo=dt.UTC)
    with timezone.override("Europe/Paris"), translation.override("en"):
        assert ">2030-07-01 05:04 CEST</time>" in when(moment)
        assert ">2030-07-01 05:04:05 CEST</time>" in when(moment, "seconds")
    with timezone.override("Asia/Tokyo"), translation.override("ja"):
        assert ">2030/07/01 12:04 JST</time>" in when(moment)
    assert when(None) == ""


def test_a_deadline_shows_relatively_on_the_challenge_page(world, client_as):
    end = timezone.now() + dt.timedelta(days=3, hours=1)
    Challenge.objects.filter(pk=world.challenge.pk).update(end_date=end)
    url = f"/challenges/{world.challenge.pk}/"
    assert "closes in 3 days" in client_as("participant").get(url).content.decode()
    assert "あと3日で締め切り" in Client().get(url, **JA).content.decode()


def test_page_scripts_get_their_texts_in_the_pages_language(world, client_as):
    page = client_as("participant").get(
        f"/challenges/{world.challenge.pk}/phases/dev/submit/", **JA
    )
    html = page.content.decode()
    start = html.index('<script id="evalserver-texts" type="application/json">')
    texts = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert texts["uploading"] == "アップロード中…"
    assert texts["statuses"]["finished"] == "完了"

"""A challenge's forum over the API and the pages: who reads and writes, moderation with
its audit trail, announcements sent to every participant, quoting, search, pages, and
throttling. The authorisation table (tests/security) covers every API route x role."""

from __future__ import annotations

import pytest
from django.utils import timezone

from challenges.models import (
    AuditEvent,
    ChallengeParticipation,
    Notification,
    OutboxMessage,
    Post,
    Thread,
)
from challenges.models.notifications import Kind
from tests.frontend.conftest import ROLES

pytestmark = pytest.mark.django_db


def ask(api, world, who="charlie", title="How are ties broken?", body="Asking for a friend."):
    response = api(who).post(
        f"/api/v1/challenges/{world.challenge.pk}/forum/threads/",
        {"title": title, "body": body},
        format="json",
    )
    assert response.status_code == 201, response.content
    return Thread.objects.get(pk=response.json()["id"])


def reply(api, thread, who, body, **extra):
    return api(who).post(
        f"/api/v1/forum/threads/{thread.pk}/posts/", {"body": body, **extra}, format="json"
    )


def test_a_participant_asks_the_host_answers_and_pins_it(world, api, users):
    thread = ask(api, world)
    assert reply(api, thread, "alice", "By the earlier submission.").status_code == 201
    other = ask(api, world, who="dave", title="Later question")
    response = api("alice").patch(f"/api/v1/forum/threads/{thread.pk}/", {"pinned": True})
    assert response.status_code == 200 and response.json()["is_pinned"] is True
    listing = api(None).get(f"/api/v1/challenges/{world.challenge.pk}/forum/threads/").json()
    assert [t["id"] for t in listing["results"]] == [thread.pk, other.pk]
    assert listing["results"][0]["replies"] == 1
    event = AuditEvent.objects.get(action=AuditEvent.Action.THREAD_PIN)
    assert event.actor == users["alice"] and event.challenge == world.challenge


def test_participants_cannot_moderate(world, api):
    thread = ask(api, world)
    for who in ("charlie", "dave", "bob"):
        answer = api(who).patch(f"/api/v1/forum/threads/{thread.pk}/", {"locked": True})
        assert answer.status_code == 403
    thread.refresh_from_db()
    assert not thread.is_locked


def test_hiding_needs_a_reason_which_the_audit_log_keeps(world, api):
    thread = ask(api, world)
    url = f"/api/v1/forum/threads/{thread.pk}/"
    refused = api("alice").patch(url, {"hidden": True}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()["detail"]
    done = api("alice").patch(url, {"hidden": True, "reason": "off topic"}, format="json")
    assert done.status_code == 200
    audit = AuditEvent.objects.get(action=AuditEvent.Action.THREAD_HIDE)
    assert audit.details == {"value": True, "reason": "off topic"}
    # Hidden: gone for everyone but the hosts, in the list and by id.
    assert api("dave").get(url).status_code == 404
    assert api("charlie").get(url).status_code == 404
    assert api("alice").get(url).json()["thread"]["hidden_reason"] == "off topic"
    listing = api("dave").get(f"/api/v1/challenges/{world.challenge.pk}/forum/threads/").json()
    assert listing["count"] == 0


def test_a_hidden_post_keeps_its_place_but_not_its_text(world, api):
    thread = ask(api, world)
    post = reply(api, thread, "dave", "rude words").json()
    hide = api("alice").post(
        f"/api/v1/forum/posts/{post['id']}/hide/", {"hidden": True, "reason": "rude"}
    )
    assert hide.status_code == 200
    seen = api("charlie").get(f"/api/v1/forum/threads/{thread.pk}/").json()["posts"]
    assert seen[1]["is_hidden"] and seen[1]["body"] == "" and seen[1]["hidden_reason"] == "rude"
    own = api("dave").get(f"/api/v1/forum/threads/{thread.pk}/").json()["posts"]
    assert own[1]["body"] == "rude words"
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.POST_HIDE, target=f"post {post['id']}"
    )


def test_a_locked_thread_takes_replies_from_hosts_only(world, api):
    thread = ask(api, world)
    api("alice").patch(f"/api/v1/forum/threads/{thread.pk}/", {"locked": True})
    refused = reply(api, thread, "dave", "me too")
    assert refused.status_code == 403 and "locked" in refused.json()["detail"]
    assert reply(api, thread, "alice", "Closing this.").status_code == 201


def test_only_the_author_edits_or_deletes_a_post(world, api):
    thread = ask(api, world)
    first = thread.posts.get()
    url = f"/api/v1/forum/posts/{first.pk}/"
    assert api("dave").patch(url, {"body": "hijack"}, format="json").status_code == 403
    assert api("alice").delete(url).status_code == 403
    edited = api("charlie").patch(url, {"body": "Clearer question"}, format="json")
    assert edited.status_code == 200 and edited.json()["edited_at"]
    assert api("charlie").delete(url).status_code == 204
    first.refresh_from_db()
    assert first.is_deleted and first.body == ""
    shown = api(None).get(f"/api/v1/forum/threads/{thread.pk}/").json()["posts"][0]
    assert shown["is_deleted"] and shown["body"] == ""


def test_a_reply_can_quote_a_post_of_the_thread(world, api):
    thread = ask(api, world, body="Is the test set balanced?")
    first = thread.posts.get()
    answer = reply(api, thread, "alice", "Yes.", quotes=first.pk)
    assert answer.status_code == 201
    assert answer.json()["body"].startswith("> **@charlie**:\n> Is the test set balanced?")
    assert "<blockquote>" in answer.json()["html"]
    elsewhere = ask(api, world, who="dave", title="Other")
    assert reply(api, elsewhere, "dave", "x", quotes=first.pk).status_code == 404


def test_search_finds_threads_by_title_and_post_within_the_challenge(world, api):
    ask(api, world, title="Metric question", body="How is macro-F1 averaged?")
    ask(api, world, title="Data loading", body="The CSV has a BOM")
    url = f"/api/v1/challenges/{world.challenge.pk}/forum/threads/"
    found = api(None).get(url, {"search": "macro-f1"}).json()
    assert [t["title"] for t in found["results"]] == ["Metric question"]
    assert api(None).get(url, {"search": "data load"}).json()["count"] == 1
    assert api(None).get(url, {"search": "nothing like this"}).json()["count"] == 0


def test_threads_and_posts_come_in_pages(world, api):
    thread = ask(api, world)
    Post.objects.bulk_create(
        [Post(thread=thread, author=thread.author, body=f"reply {i}") for i in range(60)]
    )
    page = api(None).get(f"/api/v1/forum/threads/{thread.pk}/", {"limit": 20, "offset": 40})
    body = page.json()
    assert body["count"] == 61 and len(body["posts"]) == 20
    assert body["posts"][0]["body"] == "reply 39"
    html = api(None).get(f"/challenges/{world.challenge.pk}/forum/{thread.pk}/?page=3")
    assert html.status_code == 200 and b"reply 59" in html.content


def test_a_private_challenges_forum_is_private(world, api, client_as):
    url = f"/api/v1/challenges/{world.pending.pk}/forum/threads/"
    for who in (None, "erin", "charlie", "bob"):
        assert api(who).get(url).status_code == 404
    assert api("alice").get(url).status_code == 200
    assert client_as("participant").get(f"/challenges/{world.pending.pk}/forum/").status_code == 404


def test_outsiders_and_banned_teams_cannot_write(world, api):
    url = f"/api/v1/challenges/{world.challenge.pk}/forum/threads/"
    body = {"title": "t", "body": "b"}
    outsider = api("erin").post(url, body, format="json")
    assert outsider.status_code == 403 and "accept the terms" in outsider.json()["detail"]
    ChallengeParticipation.objects.filter(team=world.dave_team).update(is_banned=True)
    assert api("dave").post(url, body, format="json").status_code == 403
    assert api("dave").get(url).status_code == 200  # reading stays open


def test_forum_writes_are_throttled_per_user(world, api, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "forum_user": "2/minute"}
    thread = ask(api, world)
    assert reply(api, thread, "charlie", "one").status_code == 201
    limited = reply(api, thread, "charlie", "two")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert reply(api, thread, "dave", "another user is not slowed").status_code == 201
    assert api("charlie").get(f"/api/v1/forum/threads/{thread.pk}/").status_code == 200


def test_an_announcement_is_on_the_challenge_page_and_sent_to_every_participant(
    world, api, client_as, fan_out
):
    response = api("alice").post(
        f"/api/v1/challenges/{world.challenge.pk}/forum/announcements/",
        {"title": "Deadline moved", "body": "The test phase now ends **on Friday**."},
        format="json",
    )
    assert response.status_code == 201 and response.json()["is_pinned"]
    assert (
        api("charlie")
        .post(
            f"/api/v1/challenges/{world.challenge.pk}/forum/announcements/",
            {"title": "x", "body": "y"},
            format="json",
        )
        .status_code
        == 403
    )
    page = client_as("anonymous").get(f"/challenges/{world.challenge.pk}/").content.decode()
    assert "Deadline moved" in page and "<strong>on Friday</strong>" in page
    fan_out()
    told = Notification.objects.filter(kind=Kind.ANNOUNCEMENT)
    assert sorted(n.user.username for n in told) == ["charlie", "dave"]
    emails = OutboxMessage.objects.filter(kind=Kind.ANNOUNCEMENT, transport="email")
    assert sorted(m.message["to"] for m in emails) == ["charlie@example.org", "dave@example.org"]
    # Fanning out again (a retried task) tells nobody twice.
    from challenges.notifications.fanout import event_fan_out

    assert event_fan_out(event_id=told.first().event_id) == 0
    assert Notification.objects.filter(kind=Kind.ANNOUNCEMENT).count() == 2


def test_markdown_in_posts_is_sanitised_on_the_page(world, api, client_as):
    thread = ask(
        api,
        world,
        body="<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>",
    )
    page = client_as("other_team").get(f"/challenges/{world.challenge.pk}/forum/{thread.pk}/")
    html = page.content.decode()
    assert "<script>alert(1)" not in html and 'href="javascript:' not in html
    assert "<img src=x onerror" not in html and "&lt;script&gt;" in html


# ---------------------------------------------------------------- pages, every role

OK, LOGIN = 200, "login"


def _pages(w, thread, post):
    c = w.challenge.pk
    return {
        "forum": ("GET", f"/challenges/{c}/forum/", dict.fromkeys(ROLES, OK)),
        "thread": ("GET", f"/challenges/{c}/forum/{thread.pk}/", dict.fromkeys(ROLES, OK)),
        "new thread": (
            "POST",
            f"/challenges/{c}/forum/",
            {
                "anonymous": 403,
                "outsider": 403,
                "other_host": 403,
                "participant": 302,
                "other_team": 302,
                "host": 302,
                "admin": 302,
            },
        ),
        "moderate": (
            "POST",
            f"/forum/threads/{thread.pk}/moderate/",
            {**dict.fromkeys(ROLES, 403), "anonymous": LOGIN, "host": 302, "admin": 302},
        ),
        "edit post": (
            "GET",
            f"/forum/posts/{post.pk}/edit/",
            {**dict.fromkeys(ROLES, 403), "anonymous": LOGIN, "participant": OK},
        ),
        "notifications": (
            "GET",
            "/notifications/",
            {**dict.fromkeys(ROLES, OK), "anonymous": LOGIN},
        ),
        "analytics": (
            "GET",
            f"/host/challenges/{c}/phases/test/analytics/",
            {**dict.fromkeys(ROLES, 403), "anonymous": LOGIN, "host": OK, "admin": OK},
        ),
    }


@pytest.mark.parametrize("role", ROLES)
def test_each_forum_page_answers_each_role_as_expected(world, api, client_as, role):
    thread = ask(api, world)
    post = thread.posts.get()
    for name, (method, url, expected) in _pages(world, thread, post).items():
        client = client_as(role)
        data = {"title": "Page thread", "body": "from the page", "action": "pin"}
        response = client.get(url) if method == "GET" else client.post(url, data)
        want = expected[role]
        if want == LOGIN:
            assert response.status_code == 302, name
            assert response["Location"].startswith("/accounts/login/"), name
        else:
            assert response.status_code == want, (name, response.status_code)


def test_the_header_counts_unread_notifications(world, client_as, users):
    Notification.objects.create(user=users["charlie"], kind=Kind.REPLY, title="A reply", url="/")
    page = client_as("participant").get("/").content.decode()
    assert 'data-testid="notification-count"' in page and '<span class="badge">1</span>' in page
    listing = client_as("participant").get("/notifications/").content.decode()
    assert "A reply" in listing
    client_as("participant").post("/notifications/")
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_write_ups_open_when_the_phase_ends_on_the_final_submission(world, api, client_as):
    url = f"/api/v1/submissions/{world.charlie_sub.pk}/writeup/"
    body = {
        "title": "Gradient boosting",
        "body": "We used **GBMs**.",
        "code_url": "https://example.org/code",
    }
    early = api("charlie").post(url, body, format="json")
    assert early.status_code == 400 and "phase ends" in early.json()["detail"]
    phase = world.charlie_sub.phase
    phase.end_date = timezone.now() - timezone.timedelta(hours=1)
    phase.save(update_fields=["end_date"])
    assert api("alice").post(url, body, format="json").status_code == 403
    made = api("charlie").post(url, body, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["kind"] == "writeup" and made.json()["submission"] == world.charlie_sub.pk
    again = api("charlie").post(url, body, format="json")
    assert again.status_code == 400
    board = client_as("anonymous").get(
        f"/challenges/{world.challenge.pk}/phases/test/leaderboard/public/"
    )
    assert f"/forum/{made.json()['id']}/" in board.content.decode()

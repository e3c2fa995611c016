"""Notifications: events written with what caused them, fanned out once, and sent from the
outbox by the same code the Celery task runs: email through a real SMTP server process
(aiosmtpd) in the user's language with a one-click unsubscribe, chat webhooks to a local
HTTP server, and nothing lost or sent twice when the mail server is down."""

from __future__ import annotations

import struct
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection, transaction
from django.utils import timezone

from challenges.models import (
    ChatHook,
    Notification,
    NotificationEvent,
    NotificationPreference,
    OutboxMessage,
    Submission,
    UserProfile,
)
from challenges.models.notifications import Kind
from challenges.notifications import events, fanout
from challenges.notifications.messages import user_language
from challenges.notifications.outbox import outbox_send, outbox_sweep
from challenges.notifications.periodic import digests_record, phase_deadlines_record
from challenges.notifications.preferences import unsubscribe_url
from challenges.services.submissions import (
    EvaluationRecord,
    submission_fail,
    submission_record_outcome,
)
from tests.mail import HookServer, SmtpServer
from tests.services import spare_port

FAILED_EN = "Your submission %(id)s to %(challenge)s failed"
FAILED_FR = "Votre soumission %(id)s pour %(challenge)s a échoué"
FOOTER_EN = (
    "You get this email because of your notification settings. Stop emails of this kind: %(url)s"
)
FOOTER_FR = (
    "Vous recevez ce courriel selon vos réglages. Ne plus recevoir ce genre de courriel : %(url)s"
)


def write_mo(path: Path, messages: dict[str, str]) -> None:
    """A GNU .mo catalogue (test data: the project's own catalogues are another issue's)."""
    messages = {"": "Content-Type: text/plain; charset=UTF-8\n", **messages}
    keys = sorted(messages)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(messages[k].encode() + b"\0" for k in keys)
    start = 7 * 4 + 16 * len(keys)
    offsets, pos = [], 0
    for k in keys:
        offsets.append((len(k.encode()), start + pos))
        pos += len(k.encode()) + 1
    trans, pos = [], 0
    for k in keys:
        value = messages[k].encode()
        trans.append((len(value), start + len(ids) + pos))
        pos += len(value) + 1
    header = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 28, 28 + 8 * len(keys), 0, 0)
    table = b"".join(struct.pack("ii", *o) for o in offsets + trans)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + table + ids + strs)


@pytest.fixture
def smtp(tmp_path, settings):
    server = SmtpServer(spare_port(), tmp_path / "maildir")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_TIMEOUT = 5
    settings.SITE_URL = "https://evalserver.example"
    yield server
    server.stop()


@pytest.fixture
def french_catalogue(tmp_path, settings):
    write_mo(
        tmp_path / "locale" / "fr" / "LC_MESSAGES" / "django.mo",
        {FAILED_EN: FAILED_FR, FOOTER_EN: FOOTER_FR},
    )
    settings.LOCALE_PATHS = [str(tmp_path / "locale")]  # resets Django's translation cache


def fail_running(world) -> Submission:
    submission = world.charlie_running
    assert submission_fail(
        submission_id=submission.pk,
        kind="platform",
        message="worker lost",
        from_statuses=(Submission.Status.RUNNING,),
    )
    return submission


def send_all() -> None:
    for pk in OutboxMessage.objects.filter(status="pending").values_list("pk", flat=True):
        outbox_send(message_id=pk)


@pytest.mark.django_db
def test_a_final_state_and_its_event_commit_together_or_not_at_all(world):
    submission = world.charlie_running
    with pytest.raises(RuntimeError), transaction.atomic():
        fail_running(world)
        raise RuntimeError("the caller's transaction rolls back")
    assert not NotificationEvent.objects.filter(kind=Kind.SUBMISSION_FAILED).exists()
    fail_running(world)
    event = NotificationEvent.objects.get(kind=Kind.SUBMISSION_FAILED)
    assert event.payload["submission_id"] == submission.pk and event.fanned_out_at is None


@pytest.mark.django_db
def test_email_arrives_through_smtp_in_the_users_language_with_one_click_unsubscribe(
    world, smtp, french_catalogue, client_as
):
    smtp.start()
    # The user's language comes from their profile: charlie's says French.
    UserProfile.objects.create(user=world.charlie_team.created_by, language="fr")
    submission = fail_running(world)
    fanout.event_fan_out(event_id=NotificationEvent.objects.get(kind=Kind.SUBMISSION_FAILED).pk)
    site = Notification.objects.get(user__username="charlie", kind=Kind.SUBMISSION_FAILED)
    assert site.title.startswith(f"Votre soumission {submission.pk} pour")
    send_all()
    [mail] = smtp.wait_for(1)
    assert mail["To"] == "charlie@example.org"
    assert f"Votre soumission {submission.pk} pour" in mail["Subject"]
    assert mail["Content-Language"] == "fr"
    body = mail.get_content()
    link = unsubscribe_url(world.charlie_team.created_by.pk, Kind.SUBMISSION_FAILED)
    assert f"Ne plus recevoir ce genre de courriel : {link}" in body
    assert str(mail["List-Unsubscribe"]).strip() == f"<{link}>"
    assert str(mail["List-Unsubscribe-Post"]).strip() == "List-Unsubscribe=One-Click"
    assert f"https://evalserver.example/submissions/{submission.pk}/" in body
    # One click from the mail client: a POST without session or CSRF token.
    path = urlsplit(link).path
    page = client_as("anonymous").get(path)
    assert page.status_code == 200 and not NotificationPreference.objects.exists()
    assert client_as("anonymous").post(path).status_code == 200
    assert NotificationPreference.objects.get(kind=Kind.SUBMISSION_FAILED).enabled is False
    assert client_as("anonymous").post(path[:-3] + "xx/").status_code == 404
    # The next failure reaches charlie on the site only.
    world.charlie_running.refresh_from_db()
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.RUNNING)
    fail_running(world)
    fanout.event_fan_out(
        event_id=NotificationEvent.objects.filter(fanned_out_at__isnull=True).latest("pk").pk
    )
    assert not OutboxMessage.objects.filter(status="pending").exists()
    assert Notification.objects.filter(kind=Kind.SUBMISSION_FAILED).count() == 2


def test_the_language_comes_from_the_profile_when_there_is_one(settings):
    class Profile:
        language = "de"

    class WithProfile:
        profile = Profile()

    class WithoutProfile:
        pass

    assert user_language(WithProfile()) == "de"
    assert user_language(WithoutProfile()) == settings.LANGUAGE_CODE


@pytest.mark.django_db
def test_a_user_who_never_chose_a_language_gets_the_sites(world, settings):
    charlie = world.charlie_team.created_by
    assert user_language(charlie) == settings.LANGUAGE_CODE
    UserProfile.objects.create(user=charlie, language="ja")
    assert user_language(type(charlie).objects.get(pk=charlie.pk)) == "ja"


@pytest.mark.django_db(transaction=True)
def test_the_outbox_survives_the_mail_server_being_down_and_sends_once_when_back(
    world, smtp, settings, monkeypatch
):
    require_postgres()
    settings.OUTBOX_RETRY_BASE_S = 60.0
    # This test plays the workers itself. Its transactions commit, so the on-commit sends
    # would reach the session's real worker when another test has started one, and that
    # worker would fan out and send the same message behind the test's back.
    sent_to_workers = []
    for module in (events, fanout):
        monkeypatch.setattr(module, "enqueue", lambda task, pk: sent_to_workers.append(task))
    fail_running(world)
    fanout.event_fan_out(event_id=NotificationEvent.objects.get(kind=Kind.SUBMISSION_FAILED).pk)
    message = OutboxMessage.objects.get(transport="email", user=world.charlie_running.created_by)
    # The mail server is down: the attempt fails, the message waits for its next turn.
    assert outbox_send(message_id=message.pk) == 60.0
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 1
    assert "Connection refused" in message.last_error or "ConnectionRefused" in message.last_error
    assert outbox_send(message_id=message.pk) is None, "sent before its next attempt was due"
    smtp.start()
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    # Two workers get it at once (the task retried, and the sweeper sent it again): one sends.
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        try:
            outbox_send(message_id=message.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(smtp.wait_for(1)) == 1
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 2 and message.sent_at
    # Sent is final: no retry, no sweep sends it again.
    assert outbox_send(message_id=message.pk) is None
    outbox_sweep(now=timezone.now() + timedelta(days=1))
    outbox_send(message_id=message.pk)
    assert len(smtp.wait_for(2, timeout=1)) == 1


@pytest.mark.django_db
def test_a_message_claimed_by_a_worker_that_died_is_handed_out_again(world, settings):
    fail_running(world)
    fanout.event_fan_out(event_id=NotificationEvent.objects.get(kind=Kind.SUBMISSION_FAILED).pk)
    message = OutboxMessage.objects.get()
    long_ago = timezone.now() - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_S + 1)
    OutboxMessage.objects.filter(pk=message.pk).update(status="sending", claimed_at=long_ago)
    assert outbox_sweep()["reclaimed"] == 1
    message.refresh_from_db()
    assert message.status == "pending"


@pytest.mark.django_db
def test_hosts_chat_webhooks_get_slack_mattermost_and_teams_payloads(world, api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    refused = api("alice").post(
        f"/api/v1/challenges/{world.challenge.pk}/chat-hooks/",
        {"flavour": "slack", "url": "http://127.0.0.1:9/x", "events": ["announcement"]},
        format="json",
    )
    assert refused.status_code == 400 and "private or local" in refused.json()["detail"]
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the hooks below are servers on 127.0.0.1
    with HookServer() as server:
        for flavour in ("slack", "mattermost", "teams"):
            made = api("alice").post(
                f"/api/v1/challenges/{world.challenge.pk}/chat-hooks/",
                {"flavour": flavour, "url": f"{server.url}/{flavour}", "events": ["announcement"]},
                format="json",
            )
            assert made.status_code == 201, made.content
        api("alice").post(
            f"/api/v1/challenges/{world.challenge.pk}/chat-hooks/",
            {"flavour": "slack", "url": f"{server.url}/replies", "events": ["reply"]},
            format="json",
        )
        api("alice").post(
            f"/api/v1/challenges/{world.challenge.pk}/forum/announcements/",
            {"title": "Leaderboard reset", "body": "See the rules."},
            format="json",
        )
        for event in NotificationEvent.objects.filter(fanned_out_at__isnull=True):
            fanout.event_fan_out(event_id=event.pk)
        for pk in OutboxMessage.objects.filter(transport="chat").values_list("pk", flat=True):
            outbox_send(message_id=pk)
        got = {path: body for path, _headers, body in server.received}
    assert set(got) == {"/slack", "/mattermost", "/teams"}
    assert "Leaderboard reset" in got["/slack"]["text"] and got["/slack"]["text"].startswith(
        "<http"
    )
    assert (
        got["/mattermost"]["username"] == "evalserver"
        and "Leaderboard reset" in got["/mattermost"]["text"]
    )
    assert (
        got["/teams"]["@type"] == "MessageCard" and "Leaderboard reset" in got["/teams"]["summary"]
    )
    assert not OutboxMessage.objects.exclude(status="sent").filter(transport="chat").exists()


@pytest.mark.django_db
def test_a_chat_hook_that_turned_private_is_not_posted_to(world, settings, users):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    hook = ChatHook.objects.create(
        challenge=world.challenge,
        flavour="slack",
        url="http://127.0.0.1:9/x",
        events=["announcement"],
    )
    message = OutboxMessage.objects.create(
        transport="chat", kind=Kind.ANNOUNCEMENT, chat_hook=hook, message={"text": "x"}
    )
    outbox_send(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == "pending" and "private or local" in message.last_error


@pytest.mark.django_db
def test_a_reply_tells_followers_and_a_mention_tells_the_named_once(world, api, fan_out, users):
    thread = (
        api("charlie")
        .post(
            f"/api/v1/challenges/{world.challenge.pk}/forum/threads/",
            {"title": "Question", "body": "?"},
            format="json",
        )
        .json()
    )
    api("dave").post(
        f"/api/v1/forum/threads/{thread['id']}/posts/", {"body": "Same here"}, format="json"
    )
    api("alice").post(
        f"/api/v1/forum/threads/{thread['id']}/posts/",
        {"body": "@charlie @erin @dave see the rules"},
        format="json",
    )
    fan_out()
    got = sorted(
        (n.user.username, n.kind)
        for n in Notification.objects.filter(kind__in=[Kind.REPLY, Kind.MENTION])
    )
    # charlie follows (author): dave's reply; alice's names charlie and dave (mentions, not
    # also replies); erin cannot write here but the forum is public, so she may read it.
    assert got == [
        ("charlie", Kind.MENTION),
        ("charlie", Kind.REPLY),
        ("dave", Kind.MENTION),
        ("erin", Kind.MENTION),
    ]


@pytest.mark.django_db
def test_a_mention_in_a_private_forum_reaches_only_those_who_can_read_it(world, api, fan_out):
    thread = api("alice").post(
        f"/api/v1/challenges/{world.pending.pk}/forum/threads/",
        {"title": "Draft", "body": "@charlie @bob what do you think?"},
        format="json",
    )
    assert thread.status_code == 201
    fan_out()
    assert not Notification.objects.filter(kind=Kind.MENTION).exists()


@pytest.mark.django_db
def test_a_phase_closing_within_a_day_is_told_once(world, fan_out):
    phase = world.challenge.phases.get(codename="test")
    phase.end_date = timezone.now() + timedelta(hours=3)
    phase.save(update_fields=["end_date"])
    assert phase_deadlines_record() == 1
    assert phase_deadlines_record() == 0
    fan_out()
    told = Notification.objects.filter(kind=Kind.PHASE_CLOSING)
    assert sorted(n.user.username for n in told) == ["charlie", "dave"]


@pytest.mark.django_db
def test_the_weekly_digest_is_opt_in(world, api, users, fan_out):
    assert digests_record() == 0
    api("charlie").put(
        "/api/v1/notifications/preferences/",
        {"preferences": [{"kind": "digest", "channel": "email", "enabled": True}]},
        format="json",
    )
    Notification.objects.create(user=users["charlie"], kind=Kind.REPLY, title="Earlier reply")
    assert digests_record() == 1 and digests_record() == 0
    fan_out()
    [mail] = OutboxMessage.objects.filter(kind=Kind.DIGEST)
    assert mail.message["to"] == "charlie@example.org" and "Earlier reply" in mail.message["body"]


@pytest.mark.django_db
def test_challenge_review_tells_the_hosts(world, users, fan_out):
    from challenges.services.challenges import challenge_reject

    challenge_reject(challenge=world.pending, reviewer=users["admin"], note="Add a licence.")
    fan_out()
    told = Notification.objects.filter(kind=Kind.CHALLENGE_REVIEW, challenge=world.pending)
    assert [n.user.username for n in told] == ["alice"]
    assert "rejected" in told[0].title


@pytest.mark.django_db
def test_a_new_leader_on_a_public_split_is_told(world, users, fan_out):
    from challenges.notifications.leaders import leaders_check
    from tests.frontend.conftest import _finished

    phase = world.challenge.phases.get(codename="test")
    assert leaders_check(phase_id=phase.pk) == 0  # the first look only notes who leads
    _finished(
        phase,
        world.charlie_team,
        users["charlie"],
        scores={"public": {"Accuracy": 0.99, "Macro-F1": 0.9}},
        stdout="",
    )
    assert leaders_check(phase_id=phase.pk) == 1
    assert leaders_check(phase_id=phase.pk) == 0
    fan_out()
    told = Notification.objects.filter(kind=Kind.NEW_LEADER)
    assert {n.user.username for n in told} == {"alice", "charlie", "dave"}
    assert "Charlie Team" in told[0].title


@pytest.mark.django_db
def test_preferences_turn_a_kind_off_per_channel(world, api, fan_out):
    answer = api("dave").put(
        "/api/v1/notifications/preferences/",
        {"preferences": [{"kind": "announcement", "channel": "site", "enabled": False}]},
        format="json",
    )
    assert answer.status_code == 200
    assert {"kind": "announcement", "channel": "site", "enabled": False} in answer.json()
    api("alice").post(
        f"/api/v1/challenges/{world.challenge.pk}/forum/announcements/",
        {"title": "News", "body": "x"},
        format="json",
    )
    fan_out()
    assert [n.user.username for n in Notification.objects.filter(kind=Kind.ANNOUNCEMENT)] == [
        "charlie"
    ]
    assert OutboxMessage.objects.filter(kind=Kind.ANNOUNCEMENT, user__username="dave").exists()


@pytest.mark.django_db
def test_notifications_api_lists_own_and_marks_read(world, api, users):
    Notification.objects.create(user=users["charlie"], kind=Kind.REPLY, title="mine")
    Notification.objects.create(user=users["dave"], kind=Kind.REPLY, title="his")
    listing = api("charlie").get("/api/v1/notifications/").json()
    assert [n["title"] for n in listing["results"]] == ["mine"] and listing["unread"] == 1
    assert api("charlie").post("/api/v1/notifications/read/", {}, format="json").json() == {
        "marked": 1
    }
    assert api("charlie").get("/api/v1/notifications/").json()["unread"] == 0
    assert Notification.objects.filter(user=users["dave"], read_at__isnull=True).exists()


def require_postgres():
    from tests.conftest import postgres_in_use, require_service

    require_service("postgresql (set DATABASE_URL=postgres://...)", postgres_in_use())


@pytest.mark.django_db
def test_a_worker_tells_the_team_itself_once_the_outcome_commits(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    sent_to_workers = []
    monkeypatch.setattr(events, "enqueue", lambda task, pk: sent_to_workers.append(task))
    record = EvaluationRecord(ok=False, scores={}, missing_splits=[], failure_kind="evaluation")
    with django_capture_on_commit_callbacks(execute=True):
        assert submission_record_outcome(
            submission=world.charlie_running, record=record, fan_out_here=True
        )
    event = NotificationEvent.objects.get(kind=Kind.SUBMISSION_FAILED)
    assert event.fanned_out_at is not None and sent_to_workers == []
    assert Notification.objects.filter(user__username="charlie", event=event).exists()


@pytest.mark.django_db
def test_a_fan_out_run_again_tells_no_one_twice(world, monkeypatch):
    # A worker that died after the notification's INSERT but whose claim a sweeper reset:
    # the second fan-out's row for the same user and event is skipped, not an error.
    monkeypatch.setattr(fanout, "enqueue", lambda task, pk: None)
    fail_running(world)
    event = NotificationEvent.objects.get(kind=Kind.SUBMISSION_FAILED)
    for _ in range(2):
        NotificationEvent.objects.filter(pk=event.pk).update(fanned_out_at=None)
        fanout.event_fan_out(event_id=event.pk)
    notes = Notification.objects.filter(event=event)
    assert [n.user.username for n in notes] == ["charlie"]
    assert notes[0].title and notes[0].kind == Kind.SUBMISSION_FAILED


@pytest.mark.django_db
def test_a_fan_out_that_fails_in_the_worker_goes_to_the_fan_out_task(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    sent_to_workers = []
    monkeypatch.setattr(events, "enqueue", lambda task, pk: sent_to_workers.append(task))
    monkeypatch.setattr(fanout, "enqueue", lambda task, pk: sent_to_workers.append(task))

    def broken(event_id):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(fanout, "event_fan_out", lambda *, event_id: broken(event_id))
    record = EvaluationRecord(ok=False, scores={}, missing_splits=[], failure_kind="evaluation")
    with django_capture_on_commit_callbacks(execute=True):
        assert submission_record_outcome(
            submission=world.charlie_running, record=record, fan_out_here=True
        )
    assert sent_to_workers == [events.FAN_OUT_TASK]
    assert NotificationEvent.objects.get(kind=Kind.SUBMISSION_FAILED).fanned_out_at is None


@pytest.mark.django_db
def test_a_result_that_changes_no_board_is_not_checked_for_a_new_leader(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    from challenges import leaderboard_rules as rules
    from challenges.services.submissions import phase_splits_by_codename

    monkeypatch.setattr(events, "enqueue", lambda task, pk: None)
    checked = []
    monkeypatch.setattr(fanout, "leaders_check", lambda *, phase_id: checked.append(phase_id))
    first = world.charlie_running
    splits = phase_splits_by_codename(first.phase_id)
    scores = {
        codename: dict.fromkeys(rules.labels_of(split.leaderboard.schema), 0.5)
        for codename, split in splits.items()
    }
    record = EvaluationRecord(ok=True, scores=scores, missing_splits=[])
    again = Submission.objects.get(pk=first.pk)
    again.pk = None
    again.save()  # the same team's next submission, running, to score the same
    for submission in (first, again):
        with django_capture_on_commit_callbacks(execute=True):
            assert submission_record_outcome(
                submission=submission, record=record, fan_out_here=True
            )
    told = NotificationEvent.objects.filter(kind=Kind.SUBMISSION_FINISHED).order_by("pk")
    assert [e.payload["board_changed"] for e in told] == [True, False]
    # The first result made the team's entries; the second, no better, changed no board.
    assert checked == [first.phase_id]


def test_a_ban_that_changes_who_leads_is_told_without_waiting_for_a_submission(world, users):
    from challenges.models import ChallengeParticipation
    from challenges.notifications.leaders import leaders_check
    from challenges.services.hosting import participation_set_banned

    phase = world.challenge.phases.get(codename="test")
    assert leaders_check(phase_id=phase.pk) == 0  # the first look notes Dave Team leading
    dave = ChallengeParticipation.objects.get(challenge=world.challenge, team=world.dave_team)
    participation_set_banned(participation=dave, banned=True, reason="shared accounts")
    told = NotificationEvent.objects.filter(kind=Kind.NEW_LEADER)
    assert [e.payload["team_id"] for e in told] == [world.charlie_team.pk]
    participation_set_banned(participation=dave, banned=False)
    assert [e.payload["team_id"] for e in told.order_by("pk")] == [
        world.charlie_team.pk,
        world.dave_team.pk,
    ]


@pytest.mark.django_db
def test_a_scored_submission_emails_only_those_who_opted_in(world, api, fan_out, monkeypatch):
    from challenges import leaderboard_rules as rules
    from challenges.services.submissions import phase_splits_by_codename

    # The site shows the score: an email per scored submission (a bot's many a day) is
    # opt-in, unlike a failure's.
    monkeypatch.setattr(events, "enqueue", lambda task, pk: None)
    charlie = world.charlie_running.created_by
    splits = phase_splits_by_codename(world.charlie_running.phase_id)
    scores = {
        codename: dict.fromkeys(rules.labels_of(split.leaderboard.schema), 0.5)
        for codename, split in splits.items()
    }
    record = EvaluationRecord(ok=True, scores=scores, missing_splits=[])
    again = Submission.objects.get(pk=world.charlie_running.pk)
    again.pk = None
    again.save()
    assert submission_record_outcome(submission=world.charlie_running, record=record)
    fan_out()
    assert Notification.objects.filter(kind=Kind.SUBMISSION_FINISHED, user=charlie).count() == 1
    assert not OutboxMessage.objects.filter(transport="email", user=charlie).exists()
    answer = api("charlie").put(
        "/api/v1/notifications/preferences/",
        {"preferences": [{"kind": "submission_finished", "channel": "email", "enabled": True}]},
        format="json",
    )
    assert answer.status_code == 200
    assert submission_record_outcome(submission=again, record=record)
    fan_out()
    emails = OutboxMessage.objects.filter(transport="email", user=charlie)
    assert [m.kind for m in emails] == [Kind.SUBMISSION_FINISHED]

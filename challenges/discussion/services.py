"""Everything that changes a forum: threads, posts, announcements, write-ups and
moderation. Each takes the Forum its caller got from access_forum/access_thread, so the
decision of who may do what is made once, there."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import require_team_member
from challenges.discussion.access import Forum, require_post_author
from challenges.discussion.markdown import mentioned_usernames, quote_markdown
from challenges.models import AuditEvent, Post, Submission, Thread, ThreadFollow
from challenges.models.notifications import Kind
from challenges.notifications.events import event_record
from challenges.services.audit import audit_record

MAX_BODY = 20_000


class ForumRefused(Exception):
    """The change cannot be made; the message says why and what to do."""


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ForumRefused(_("Write something: the text is empty."))
    if len(body) > MAX_BODY:
        raise ForumRefused(
            _("The text is %(n)d characters long; the most a post may hold is %(max)d.")
            % {"n": len(body), "max": MAX_BODY}
        )
    return body


def _clean_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise ForumRefused(_("Give the thread a title."))
    if len(title) > 200:
        raise ForumRefused(_("A title may be at most 200 characters long."))
    return title


def _follow(thread: Thread, user) -> None:
    ThreadFollow.objects.get_or_create(thread=thread, user=user)


def _mentions(post: Post) -> list[int]:
    names = mentioned_usernames(post.body)
    if not names:
        return []
    users = get_user_model().objects.filter(username__in=list(names)[:50], is_active=True)
    return [pk for pk in users.values_list("pk", flat=True) if pk != post.author_id]


def _record_post(post: Post, *, kind: Kind | None) -> None:
    """The events a new post makes: replies for followers, mentions for those named."""
    thread = post.thread
    mentioned = _mentions(post)
    if kind is not None:
        # Who follows now, not when a worker gets to it: a later follower was not there yet.
        followers = list(
            ThreadFollow.objects.filter(thread=thread)
            .exclude(user_id=post.author_id)
            .values_list("user_id", flat=True)
        )
        event_record(
            kind=kind,
            challenge_id=thread.challenge_id,
            thread_id=thread.pk,
            post_id=post.pk,
            author_id=post.author_id,
            follower_ids=followers,
        )
    if mentioned:
        event_record(
            kind=Kind.MENTION,
            challenge_id=thread.challenge_id,
            thread_id=thread.pk,
            post_id=post.pk,
            author_id=post.author_id,
            user_ids=mentioned,
        )


def thread_create(*, forum: Forum, title: str, body: str) -> Thread:
    """A participant's (or a host's) question or topic, with its first post."""
    forum.require_write()
    title, body = _clean_title(title), _clean_body(body)
    with transaction.atomic():
        thread = Thread.objects.create(challenge=forum.challenge, title=title, author=forum.user)
        post = Post.objects.create(thread=thread, author=forum.user, body=body)
        _follow(thread, forum.user)
        _record_post(post, kind=None)
    return thread


def announcement_create(*, forum: Forum, title: str, body: str) -> Thread:
    """A host's announcement: pinned, shown on the challenge page, sent to every
    participant."""
    forum.require_host(_("post announcements"))
    title, body = _clean_title(title), _clean_body(body)
    with transaction.atomic():
        thread = Thread.objects.create(
            challenge=forum.challenge,
            title=title,
            author=forum.user,
            kind=Thread.Kind.ANNOUNCEMENT,
            is_pinned=True,
        )
        post = Post.objects.create(thread=thread, author=forum.user, body=body)
        _follow(thread, forum.user)
        event_record(
            kind=Kind.ANNOUNCEMENT,
            challenge_id=forum.challenge.pk,
            thread_id=thread.pk,
            post_id=post.pk,
            author_id=forum.user.pk,
        )
    return thread


def post_create(*, forum: Forum, thread: Thread, body: str, quotes: Post | None = None) -> Post:
    """A reply. A locked thread takes replies from hosts only."""
    forum.require_reply(thread)
    body = _clean_body(body)
    if quotes is not None:
        if quotes.thread_id != thread.pk or quotes.is_deleted or quotes.is_hidden:
            raise ForumRefused(_("The quoted post is not in this thread."))
        author = quotes.author.get_username() if quotes.author else _("someone")
        body = quote_markdown(author, quotes.body) + body
    now = timezone.now()
    with transaction.atomic():
        post = Post.objects.create(
            thread=thread, author=forum.user, body=body, quotes=quotes, created_at=now
        )
        Thread.objects.filter(pk=thread.pk).update(last_post_at=now)
        post.thread = thread
        _record_post(post, kind=Kind.REPLY)
        _follow(thread, forum.user)
    return post


def post_edit(*, user, post: Post, body: str) -> Post:
    require_post_author(user, post)
    post.body = _clean_body(body)
    post.edited_at = timezone.now()
    post.save(update_fields=["body", "edited_at"])
    return post


def post_delete(*, user, post: Post) -> Post:
    """The author takes a post back: its text goes, its place in the thread stays."""
    require_post_author(user, post)
    post.body, post.is_deleted, post.edited_at = "", True, timezone.now()
    post.save(update_fields=["body", "is_deleted", "edited_at"])
    return post


# ---------------------------------------------------------------- moderation


def thread_moderate(
    *,
    forum: Forum,
    thread: Thread,
    pinned: bool | None = None,
    locked: bool | None = None,
    hidden: bool | None = None,
    reason: str = "",
) -> Thread:
    """Pin, lock or hide a thread (None leaves a flag as it is); each change recorded in the
    audit log with its reason. Hiding needs a reason."""
    forum.require_host(_("moderate the forum"))
    reason = (reason or "").strip()[:500]
    if hidden and not reason:
        raise ForumRefused(_("Say why the thread is hidden: the reason is kept in the audit log."))
    changes = []
    with transaction.atomic():
        for field, value, action in (
            ("is_pinned", pinned, AuditEvent.Action.THREAD_PIN),
            ("is_locked", locked, AuditEvent.Action.THREAD_LOCK),
            ("is_hidden", hidden, AuditEvent.Action.THREAD_HIDE),
        ):
            if value is None or getattr(thread, field) == value:
                continue
            setattr(thread, field, value)
            changes.append(field)
            audit_record(
                actor=forum.user,
                action=action,
                challenge=forum.challenge,
                target=f"thread {thread.pk}",
                value=value,
                reason=reason,
            )
        if "is_hidden" in changes:
            thread.hidden_reason = reason if thread.is_hidden else ""
            changes.append("hidden_reason")
        if changes:
            thread.save(update_fields=changes)
    return thread


def post_moderate(*, forum: Forum, post: Post, hidden: bool, reason: str = "") -> Post:
    forum.require_host(_("moderate the forum"))
    reason = (reason or "").strip()[:500]
    if hidden and not reason:
        raise ForumRefused(_("Say why the post is hidden: the reason is kept in the audit log."))
    with transaction.atomic():
        Post.objects.filter(pk=post.pk).update(
            is_hidden=hidden, hidden_reason=reason if hidden else ""
        )
        audit_record(
            actor=forum.user,
            action=AuditEvent.Action.POST_HIDE,
            challenge=forum.challenge,
            target=f"post {post.pk}",
            value=hidden,
            reason=reason,
        )
    post.is_hidden, post.hidden_reason = hidden, reason if hidden else ""
    return post


# ---------------------------------------------------------------- write-ups


def writeup_create(
    *, forum: Forum, submission: Submission, title: str, body: str, code_url: str = ""
) -> Thread:
    """A team's solution write-up, on its final submission, once the phase has ended; it is
    a forum thread (replies welcome) linked from the leaderboard row."""
    forum.require_write()
    require_team_member(
        forum.user, submission.team, _("Only members of the submitting team can write it up.")
    )
    phase = submission.phase
    end = phase.end_date or forum.challenge.end_date
    if end is None or timezone.now() < end:
        raise ForumRefused(
            _("Write-ups open when the phase ends (%(end)s).") % {"end": end.isoformat()}
        )
    if submission.status not in Submission.RANKED:
        raise ForumRefused(_("Only a scored submission can carry a write-up."))
    has_final = Submission.objects.filter(
        team_id=submission.team_id, phase_id=submission.phase_id, is_final=True
    ).exists()
    if has_final and not submission.is_final:
        raise ForumRefused(_("Attach the write-up to your team's final submission."))
    if Thread.objects.filter(submission=submission).exists():
        raise ForumRefused(_("This submission has a write-up already: edit its first post."))
    if code_url and not code_url.startswith(("https://", "http://")):
        raise ForumRefused(_("The code link must start with http:// or https://."))
    title, body = _clean_title(title), _clean_body(body)
    with transaction.atomic():
        thread = Thread.objects.create(
            challenge=forum.challenge,
            title=title,
            author=forum.user,
            kind=Thread.Kind.WRITEUP,
            submission=submission,
            code_url=code_url[:1000],
        )
        Post.objects.create(thread=thread, author=forum.user, body=body)
        _follow(thread, forum.user)
    return thread


def thread_unfollow(*, user, thread: Thread) -> None:
    ThreadFollow.objects.filter(thread=thread, user=user).delete()

"""Forum reads, with their joins applied; what a reader sees depends on their Forum."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from challenges.discussion.access import Forum
from challenges.models import Post, Thread


def threads_for_forum(forum: Forum, *, search: str = "", kind: str = "") -> QuerySet[Thread]:
    """The threads a reader sees, pinned first, then by the latest post; `search` matches
    titles and post texts (case-insensitive), within this challenge only."""
    threads = Thread.objects.filter(challenge=forum.challenge).select_related("author")
    if not forum.is_host:
        threads = threads.filter(is_hidden=False)
    if kind:
        threads = threads.filter(kind=kind)
    # (NUL: PostgreSQL text cannot hold it, and no title or post does.)
    search = (search or "").replace("\x00", "").strip()[:200]
    if search:
        matching = Post.objects.filter(
            thread=OuterRef("pk"), is_deleted=False, is_hidden=False, body__icontains=search
        )
        threads = threads.filter(Q(title__icontains=search) | Exists(matching))
    return threads.annotate(replies=Count("posts", filter=Q(posts__is_deleted=False)) - 1).order_by(
        "-is_pinned", "-last_post_at", "-pk"
    )


def posts_of_thread(thread: Thread, forum: Forum) -> QuerySet[Post]:
    """A thread's posts in order; hidden ones only for hosts (others see that one was
    hidden, and why, through `is_hidden` on the row)."""
    return Post.objects.filter(thread=thread).select_related("author").order_by("created_at", "pk")


def announcements_of(challenge, limit: int = 3) -> list[Thread]:
    """The latest announcements of a challenge its reader may see, for its page."""
    threads = Thread.objects.filter(
        challenge=challenge, kind=Thread.Kind.ANNOUNCEMENT, is_hidden=False
    )
    return list(
        threads.prefetch_related("posts").select_related("author").order_by("-created_at")[:limit]
    )


def writeups_by_team_name(phase) -> dict[str, int]:
    """Visible write-up thread ids of a phase by their team's name (names are unique)."""
    return dict(
        Thread.objects.filter(
            kind=Thread.Kind.WRITEUP, submission__phase=phase, is_hidden=False
        ).values_list("submission__team__name", "pk")
    )


def writeups_by_submission(submission_ids) -> dict[int, int]:
    """Write-up thread ids by submission id, for leaderboard rows."""
    return dict(
        Thread.objects.filter(submission_id__in=list(submission_ids), is_hidden=False).values_list(
            "submission_id", "pk"
        )
    )


def writeup_may_open(submission) -> bool:
    """Whether the submission's phase has ended and it was scored (the page offers the
    write-up form; challenges.discussion.services.writeup_create decides)."""
    from django.utils import timezone

    end = submission.phase.end_date or submission.phase.challenge.end_date
    return end is not None and timezone.now() >= end and submission.status in submission.RANKED

"""A challenge's discussion: threads (questions, host announcements, solution write-ups)
and their posts. Bodies are Markdown as written; they are rendered and sanitised when
shown (challenges.discussion.markdown), never stored as HTML."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Thread(models.Model):
    class Kind(models.TextChoices):
        DISCUSSION = "discussion", _("Discussion")
        ANNOUNCEMENT = "announcement", _("Announcement")
        WRITEUP = "writeup", _("Solution write-up")

    challenge = models.ForeignKey(
        "challenges.Challenge", on_delete=models.CASCADE, related_name="threads"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.DISCUSSION)
    title = models.CharField(max_length=200)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Bumped by every new post: the forum lists the liveliest threads first.
    last_post_at = models.DateTimeField(default=timezone.now)
    is_pinned = models.BooleanField(default=False)
    is_locked = models.BooleanField(default=False)
    # Hidden by a host: readers other than hosts no longer see it; the reason is kept here
    # and in the audit log.
    is_hidden = models.BooleanField(default=False)
    hidden_reason = models.CharField(max_length=500, blank=True)
    # A write-up belongs to one final submission of a team (one write-up per submission).
    submission = models.OneToOneField(
        "challenges.Submission",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="writeup",
    )
    code_url = models.URLField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-is_pinned", "-last_post_at", "-pk"]
        indexes = [models.Index(fields=["challenge", "is_pinned", "last_post_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="writeup") | Q(submission__isnull=False),
                name="writeup_has_submission",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    # The post this one quotes (its text is copied into `body` as a Markdown quote when
    # written, so editing or deleting the original does not change what was quoted).
    quotes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    # Deleted by its author: the row stays (replies quote it, numbering holds), the text goes.
    is_deleted = models.BooleanField(default=False)
    is_hidden = models.BooleanField(default=False)
    hidden_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["thread", "created_at"])]

    def __str__(self) -> str:
        return f"post {self.pk} in thread {self.thread_id}"


class ThreadFollow(models.Model):
    """Who hears of replies: a thread's author and everyone who posted in it, until they
    stop following."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="follows")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "user"], name="uniq_thread_follow"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} follows {self.thread_id}"

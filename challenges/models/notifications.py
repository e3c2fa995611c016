"""Notifications: events recorded in the transaction of what caused them (the outbox),
fanned out by a worker into in-site notifications and outgoing messages (email, chat),
each sent by Celery and claimed with a conditional update so none goes twice."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    SUBMISSION_FINISHED = "submission_finished", _("My submission finished")
    SUBMISSION_FAILED = "submission_failed", _("My submission failed")
    REPLY = "reply", _("A reply in a thread I follow")
    MENTION = "mention", _("Someone mentioned me")
    ANNOUNCEMENT = "announcement", _("Announcements")
    PHASE_OPENING = "phase_opening", _("A phase opens within 24 hours")
    PHASE_CLOSING = "phase_closing", _("A phase closes within 24 hours")
    CHALLENGE_REVIEW = "challenge_review", _("My challenge was approved or rejected")
    NEW_LEADER = "new_leader", _("A new leader on a public leaderboard")
    DIGEST = "digest", _("Weekly digest")


class Channel(models.TextChoices):
    SITE = "site", _("On the site")
    EMAIL = "email", _("By email")


class NotificationEvent(models.Model):
    """Something happened that people may hear of. Written in the same transaction as the
    change itself (one INSERT on the hot path); who hears of it, and how, is decided by the
    worker that fans it out, exactly once (`fanned_out_at`, set by a conditional update)."""

    kind = models.CharField(max_length=24, choices=Kind.choices)
    challenge = models.ForeignKey(
        "challenges.Challenge", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    payload = models.JSONField(default=dict, blank=True)
    # Events found by a periodic sweep (a phase closing soon, the weekly digest) carry a
    # key, so two sweeps record them once.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    fanned_out_at = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.kind} event {self.pk}"


class Notification(models.Model):
    """One in-site notification: the header count and the list page."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    challenge = models.ForeignKey(
        "challenges.Challenge", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    event = models.ForeignKey(
        NotificationEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=300)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]
        constraints = [
            # A retried fan-out cannot tell someone twice.
            models.UniqueConstraint(fields=["user", "event"], name="uniq_notification_event"),
        ]

    def __str__(self) -> str:
        return self.title


class OutboxMessage(models.Model):
    """One email or chat message to send. pending -> sending (claimed by one worker with a
    conditional update) -> sent, or back to pending with a later `next_attempt_at` when the
    server refused or was down, or failed after OUTBOX_MAX_ATTEMPTS."""

    class Transport(models.TextChoices):
        EMAIL = "email", _("Email")
        CHAT = "chat", _("Chat webhook")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    transport = models.CharField(max_length=8, choices=Transport.choices)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    event = models.ForeignKey(
        NotificationEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    chat_hook = models.ForeignKey(
        "challenges.ChatHook", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Email: {to, subject, body, headers}; chat: the JSON body to POST.
    message = models.JSONField(default=dict)
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.transport} {self.kind} {self.pk} ({self.status})"


class NotificationPreference(models.Model):
    """A user's choice for one kind on one channel; without a row the default holds
    (everything on, except the weekly digest, which is opt-in)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "channel"], name="uniq_notify_pref"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.channel}: {self.enabled}"


class ChatHook(models.Model):
    """A host's incoming webhook in a chat tool, told of the events the hosts chose."""

    class Flavour(models.TextChoices):
        SLACK = "slack", "Slack"
        MATTERMOST = "mattermost", "Mattermost"
        TEAMS = "teams", "Microsoft Teams"

    challenge = models.ForeignKey(
        "challenges.Challenge", on_delete=models.CASCADE, related_name="chat_hooks"
    )
    flavour = models.CharField(max_length=12, choices=Flavour.choices)
    url = models.URLField(max_length=1000)
    events = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.get_flavour_display()} hook of challenge {self.challenge_id}"


class LeaderWatch(models.Model):
    """The team last seen leading a public split, to tell when another takes the lead."""

    phase_split = models.OneToOneField(
        "challenges.ChallengePhaseSplit", on_delete=models.CASCADE, related_name="+"
    )
    team_id = models.BigIntegerField(null=True)

    def __str__(self) -> str:
        return f"split {self.phase_split_id} led by {self.team_id}"

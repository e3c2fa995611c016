"""Who did what to whom: the actions that change what others see or can do."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One recorded action. Written only by `challenges.services.audit.audit_record`,
    read-only in the admin; rows outlive the user and the challenge they name (the names
    are copied), so a deleted account still shows who it was."""

    class Action(models.TextChoices):
        CHALLENGE_APPROVE = "challenge.approve", "Challenge approved"
        CHALLENGE_REJECT = "challenge.reject", "Challenge rejected"
        SCRIPT_VERSION = "challenge.script_version", "New evaluation-script version"
        SUBMISSION_RERUN = "submission.rerun", "Submission re-run"
        PHASE_RESCORE = "phase.rescore", "Phase re-scored"
        SPLIT_VISIBILITY = "split.visibility", "Leaderboard visibility changed"
        TEAM_BAN = "team.ban", "Team banned"
        TEAM_UNBAN = "team.unban", "Team ban lifted"
        TEAM_MERGE = "team.merge", "Teams merged"
        USER_BAN = "user.ban", "User deactivated"
        USER_UNBAN = "user.unban", "User reactivated"
        TOKEN_REVOKE = "token.revoke", "API token revoked"
        TOKEN_ROTATE = "token.rotate", "API token rotated"
        THREAD_PIN = "thread.pin", "Thread pinned or unpinned"
        THREAD_LOCK = "thread.lock", "Thread locked or unlocked"
        THREAD_HIDE = "thread.hide", "Thread hidden or shown"
        POST_HIDE = "post.hide", "Post hidden or shown"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    challenge = models.ForeignKey(
        "challenges.Challenge",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    target = models.CharField(max_length=200, blank=True, help_text="what was acted on")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.target}"

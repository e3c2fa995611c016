"""Rounds of a phase and the webhooks that tell participants' bots about them (DESIGN 7)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Round(models.Model):
    """A round of a phase: the first opens with the phase, hosts start the next ones
    (new live data, as Numerai does weekly). Each one notifies the teams' webhooks."""

    phase = models.ForeignKey(
        "challenges.ChallengePhase", on_delete=models.CASCADE, related_name="rounds"
    )
    number = models.PositiveIntegerField()
    data_version = models.CharField(max_length=100, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="empty when the round opened with the phase",
    )
    # Tournament rounds (challenges.models.tournaments): the live features bots download
    # and models run on, the close time after which submissions are refused, and the
    # targets that arrive later. `targets_version` grows with every upload of targets.
    closes_at = models.DateTimeField(null=True, blank=True)
    live_features = models.FileField(upload_to="rounds/", blank=True, max_length=300)
    live_features_sha256 = models.CharField(max_length=64, blank=True)
    targets = models.FileField(upload_to="rounds/", blank=True, max_length=300)
    targets_sha256 = models.CharField(max_length=64, blank=True)
    targets_version = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["phase", "number"], name="round_number_unique")
        ]
        ordering = ["phase", "number"]

    def __str__(self) -> str:
        return f"{self.phase} round {self.number}"


class Webhook(models.Model):
    """A participant team's URL for one challenge; the secret signs every delivery."""

    team = models.ForeignKey(
        "challenges.ParticipantTeam", on_delete=models.CASCADE, related_name="webhooks"
    )
    challenge = models.ForeignKey(
        "challenges.Challenge", on_delete=models.CASCADE, related_name="webhooks"
    )
    url = models.URLField(max_length=1000)
    secret = models.CharField(max_length=64)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.team} -> {self.url}"


class WebhookDelivery(models.Model):
    """One event for one webhook, with every attempt's outcome: the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.SET_NULL)
    trigger_id = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    log = models.JSONField(default=list, help_text="[{at, status_code, error, seconds}]")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_stale_idx")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"

"""Resumable uploads (the tus protocol): what the server knows of an upload in progress.

The bytes live in storage as numbered parts (`part_names`, in order); `offset` is the sum
of their sizes and doubles as the row's version: a part is committed by a conditional
update on the offset it started from, so two PATCHes racing at one offset cannot both
append.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ResumableUpload(models.Model):
    class Kind(models.TextChoices):
        SUBMISSION = "submission", "Submission file"
        BUNDLE = "bundle", "Challenge bundle"
        PUBLIC_DATA = "public_data", "Public data file"

    id = models.CharField(primary_key=True, max_length=32)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="resumable_uploads"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    challenge = models.ForeignKey(
        "challenges.Challenge", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    phase = models.ForeignKey(
        "challenges.ChallengePhase",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    # The team whose storage cap the declared length counts against while it uploads.
    team = models.ForeignKey(
        "challenges.ParticipantTeam",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    file_name = models.CharField(max_length=255)
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    part_names = models.JSONField(default=list, blank=True)
    sha256 = models.CharField(max_length=64)
    fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # What finishing made (e.g. {"submission": 41}), so a retried finish answers the same.
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["updated_at"])]

    def __str__(self) -> str:
        return f"{self.kind} upload {self.pk} ({self.offset}/{self.length})"

    @property
    def complete(self) -> bool:
        return self.offset >= self.length

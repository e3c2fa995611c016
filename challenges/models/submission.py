"""Submissions and their per-split results."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Submission(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        QUEUED = "queued", "Queued"
        PREDICTING = "predicting", "Predicting"
        VALIDATING = "validating", "Validating"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        PARTIALLY_EVALUATED = "partially_evaluated", "Partially evaluated"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # Named groups of statuses; the transitions between them are the table in
    # challenges.services.submissions.transitions.
    WAITING = (Status.SUBMITTED, Status.QUEUED)
    EVALUATING = (Status.PREDICTING, Status.VALIDATING, Status.RUNNING)
    # Counted against the concurrent quota; swept when stuck.
    IN_FLIGHT = (*WAITING, *EVALUATING)
    FINAL = (Status.FINISHED, Status.PARTIALLY_EVALUATED, Status.FAILED, Status.CANCELLED)
    # Only these rank on leaderboards (a partially evaluated one on the splits it has).
    RANKED = (Status.FINISHED, Status.PARTIALLY_EVALUATED)
    # Failed and cancelled submissions do not use quota.
    NOT_COUNTED = (Status.FAILED, Status.CANCELLED)

    phase = models.ForeignKey(
        "challenges.ChallengePhase", on_delete=models.CASCADE, related_name="submissions"
    )
    team = models.ForeignKey(
        "challenges.ParticipantTeam", on_delete=models.CASCADE, related_name="submissions"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions"
    )
    status = models.CharField(
        max_length=24, choices=Status.choices, default=Status.SUBMITTED, db_index=True
    )
    submitted_at = models.DateTimeField(default=timezone.now)
    # The uploaded file, stored under a name we chose; `file_name` is what the user called it.
    input_file = models.FileField(upload_to="submissions/", max_length=300)
    file_name = models.CharField(max_length=255)
    input_sha256 = models.CharField(max_length=64)
    input_size = models.BigIntegerField()
    # Failed submissions' files are removed after FAILED_SUBMISSION_RETENTION_DAYS; the row
    # (metadata, message, logs) stays and says when.
    input_purged_at = models.DateTimeField(null=True, blank=True)
    method_name = models.CharField(max_length=1000, blank=True)
    method_description = models.TextField(blank=True)
    project_url = models.URLField(max_length=1000, blank=True)
    publication_url = models.URLField(max_length=1000, blank=True)
    meta_attributes = models.JSONField(default=dict, blank=True)
    is_public = models.BooleanField(default=False)
    is_baseline = models.BooleanField(default=False)
    is_final = models.BooleanField(default=False)
    # Made after its phase ended (`allow_late_submissions`): scored, never ranked.
    is_late = models.BooleanField(default=False)
    # The team that made it, when a merge moved it to another team (challenges.services.merges).
    merged_from_team = models.ForeignKey(
        "challenges.ParticipantTeam",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # Execution. `attempt` grows with every (re-)run; results carry the attempt that made them.
    attempt = models.PositiveIntegerField(default=1)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(
        max_length=200, blank=True, help_text="host:pid of the worker that ran it"
    )
    deadline_at = models.DateTimeField(
        null=True, blank=True, help_text="when a running attempt is presumed lost"
    )
    enqueue_count = models.PositiveIntegerField(default=0)
    lost_count = models.PositiveIntegerField(
        default=0, help_text="times a worker died while running it"
    )
    # Reproducibility record of the latest attempt.
    script = models.ForeignKey(
        "challenges.EvaluationScript",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    annotation_sha256 = models.CharField(max_length=64, blank=True)
    execution = models.JSONField(
        default=dict, blank=True, help_text="python, packages, wall/cpu time, peak memory, host"
    )
    wall_time_s = models.FloatField(null=True, blank=True)
    # Outcome. Participant-facing text vs host-only detail.
    failure_kind = models.CharField(max_length=20, blank=True)
    failure_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    submission_result = models.JSONField(null=True, blank=True)
    submission_metadata = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        indexes = [
            models.Index(fields=["team", "phase", "submitted_at"], name="submission_quota_idx"),
            models.Index(fields=["status", "queued_at"], name="submission_sweep_idx"),
        ]

    def __str__(self) -> str:
        return f"submission {self.pk} ({self.status})"

    @property
    def is_final_state(self) -> bool:
        return self.status in self.FINAL


class SubmissionResult(models.Model):
    """Scores of one attempt of a submission on one phase split. Re-runs deactivate old rows."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="results")
    phase_split = models.ForeignKey(
        "challenges.ChallengePhaseSplit", on_delete=models.CASCADE, related_name="results"
    )
    attempt = models.PositiveIntegerField()
    scores = models.JSONField()
    # False: the submitting team does not read these scores on its submission (EvalAI's
    # `show_to_participant: false` from remote evaluation); leaderboards follow the split.
    shown_to_participant = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["submission", "phase_split", "attempt"], name="uniq_result_attempt"
            ),
        ]
        indexes = [
            models.Index(
                fields=["phase_split"], condition=Q(is_active=True), name="result_active_split_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"result of {self.submission_id} on split {self.phase_split_id}"

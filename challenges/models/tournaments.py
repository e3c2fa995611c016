"""Live tournaments (DESIGN section 10): a tournament phase runs in rounds; every team's
current model runs on each round's live features, bots submit predictions for the open
round, and everything is scored when the round's targets arrive.

Rounds themselves are `challenges.models.Round` (the webhooks' rounds), which carry the
round's files and times; this module holds the phase's tournament settings, the teams'
models and the round submissions.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Tournament(models.Model):
    """A phase that runs in rounds (bundle: `tournament:` on a code phase)."""

    class RankBy(models.TextChoices):
        CORR_MEAN = "corr_mean", "Mean correlation"
        SHARPE = "sharpe", "Sharpe"

    phase = models.OneToOneField(
        "challenges.ChallengePhase", on_delete=models.CASCADE, related_name="tournament"
    )
    # Cumulative leaderboard: the mean over the last N resolved rounds.
    cumulative_rounds = models.PositiveIntegerField(default=4)
    # A round opened without an explicit close time closes this long after it opened.
    round_hours = models.FloatField(default=48.0)
    rank_by = models.CharField(max_length=20, choices=RankBy.choices, default=RankBy.CORR_MEAN)
    # Validation data (bundle: tournament.validation_features, with `era` and `target`
    # columns, and optional example predictions): every new model runs on it at upload and
    # gets diagnostics (DESIGN section 16).
    validation_features = models.FileField(upload_to="validation/", blank=True, max_length=300)
    validation_features_sha256 = models.CharField(max_length=64, blank=True)
    example_predictions = models.FileField(upload_to="validation/", blank=True, max_length=300)
    example_predictions_sha256 = models.CharField(max_length=64, blank=True)
    # Feature-neutral correlation costs a regression per era; the host opts in.
    feature_neutral = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"tournament of {self.phase}"


class TournamentModel(models.Model):
    """A team's uploaded model (a pickled object with predict(live_features)). The team's
    current model is the one it marked current, else its latest upload."""

    phase = models.ForeignKey(
        "challenges.ChallengePhase", on_delete=models.CASCADE, related_name="tournament_models"
    )
    team = models.ForeignKey(
        "challenges.ParticipantTeam", on_delete=models.CASCADE, related_name="tournament_models"
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    uploaded_at = models.DateTimeField(default=timezone.now)
    file = models.FileField(upload_to="tournament-models/", max_length=300)
    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    is_current = models.BooleanField(default=False)

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        VALIDATING = "validating", _("Validating")
        SUCCESS = "success", _("Success")
        ERROR = "error", _("Error (the platform's fault)")
        FAILED = "failed", _("Failed")

    class Cause(models.TextChoices):
        VERSION_MISMATCH = "version_mismatch", _("version mismatch")
        INVALID_SUBMISSION = "invalid_submission", _("invalid submission")
        OUT_OF_MEMORY = "out_of_memory", _("out of memory")
        TIMEOUT = "timeout", _("timeout")
        EXCEPTION = "exception", _("predict() raised an exception")
        PLATFORM = "platform", _("platform error")

    # The upload's own run (DESIGN section 16): on the open round and the validation data.
    python_version = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    failure_cause = models.CharField(max_length=20, choices=Cause.choices, blank=True)
    failure_message = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # When its run was last sent to the workers (at upload, again by the sweeper while it
    # stays pending), and the token of the message that claimed it: that message alone
    # may start it over (delivered again after its worker died); another finds it taken.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    run_token = models.CharField(max_length=32, blank=True)
    # Diagnostics of the validation predictions (workers.diagnostics); the predictions
    # themselves: the model's own run, or a bot's upload (Numerai's diagnostics upload).
    validation_predictions = models.FileField(
        upload_to="validation-predictions/", blank=True, max_length=300
    )
    diagnostics = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-pk"]
        constraints = [
            # At most one marked model per team and phase; marking another unmarks it.
            models.UniqueConstraint(
                fields=["phase", "team"],
                condition=Q(is_current=True),
                name="tournament_model_one_current",
            )
        ]

    def __str__(self) -> str:
        return f"model {self.pk} of team {self.team_id}"


class RoundSubmission(models.Model):
    """A team's predictions for one round: made by its model when the round opened, or
    uploaded by its bot. Validated at once, scored when the round's targets arrive."""

    class Source(models.TextChoices):
        MODEL = "model", "Model run"
        FILE = "file", "Uploaded file"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PREDICTING = "predicting", "Predicting"
        PENDING = "pending", "Pending (waiting for targets)"
        SCORING = "scoring", "Scoring"
        SCORED = "scored", "Scored"
        FAILED = "failed", "Failed"

    round = models.ForeignKey(
        "challenges.Round", on_delete=models.CASCADE, related_name="submissions"
    )
    team = models.ForeignKey(
        "challenges.ParticipantTeam", on_delete=models.CASCADE, related_name="round_submissions"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    model = models.ForeignKey(
        TournamentModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    submitted_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    predictions = models.FileField(upload_to="round-predictions/", blank=True, max_length=300)
    predictions_sha256 = models.CharField(max_length=64, blank=True)
    rows = models.PositiveIntegerField(default=0)

    # A model run's attempt, as for submissions: the claim names the worker; a worker that
    # dies leaves a deadline behind, and the sweeper runs the model again.
    attempt = models.PositiveIntegerField(default=1)
    worker = models.CharField(max_length=200, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    lost_count = models.PositiveIntegerField(default=0)
    enqueued_at = models.DateTimeField(null=True, blank=True)

    failure_kind = models.CharField(max_length=20, blank=True)
    failure_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True, help_text="hosts only")
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    execution = models.JSONField(default=dict, blank=True)

    # Scores: `targets_version` is the round's targets version they were computed from
    # (a re-upload of the targets makes older scores stale and re-scores).
    targets_version = models.PositiveIntegerField(default=0)
    scores = models.JSONField(null=True, blank=True)
    per_era = models.JSONField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        constraints = [
            # One run per model and round: opening a round twice queues nothing twice, and
            # a model uploaded while the round is open runs on it once more.
            models.UniqueConstraint(
                fields=["round", "model"],
                condition=Q(source="model"),
                name="round_one_run_per_model",
            )
        ]
        indexes = [
            models.Index(fields=["round", "team", "submitted_at"], name="round_sub_team_idx"),
            models.Index(fields=["status", "enqueued_at"], name="round_sub_sweep_idx"),
        ]

    def __str__(self) -> str:
        return f"round submission {self.pk} ({self.status})"

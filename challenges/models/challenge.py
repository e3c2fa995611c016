"""The domain: host teams, challenges and their phases, splits and leaderboards.

Models hold fields, constraints and small properties. Everything that writes goes
through `challenges.services`; non-trivial reads through `challenges.selectors`.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

QUEUE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


def validate_queue_name(value: str) -> None:
    """A Celery queue name workers can be started with (`celery worker -Q <name>`); blank is
    the default queue. `-rounds` is kept for each queue's live-tournament twin."""
    if not value:
        return
    if not QUEUE_NAME.fullmatch(value):
        raise ValidationError(
            f"Queue name {value!r} is not valid: use 1 to 63 lowercase letters, digits, '.', "
            "'_' or '-', starting with a letter or a digit (or leave it blank for the default "
            "queue).",
            code="invalid_queue",
        )
    if value.endswith("-rounds"):
        raise ValidationError(
            f"Queue name {value!r} ends in '-rounds', which names the tournament queue of "
            f"{value.removesuffix('-rounds')!r}: pick another name.",
            code="invalid_queue",
        )


class HostTeam(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="HostTeamMember", related_name="host_teams"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class HostTeamMember(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    team = models.ForeignKey(HostTeam, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="host_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="uniq_host_team_member"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class Challenge(models.Model):
    class Review(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    host_team = models.ForeignKey(HostTeam, on_delete=models.PROTECT, related_name="challenges")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    title = models.CharField(max_length=200)
    short_description = models.TextField(blank=True)
    # HTML from the bundle, stored as uploaded; sanitised when displayed.
    description = models.TextField(blank=True)
    evaluation_details = models.TextField(blank=True)
    terms_and_conditions = models.TextField(blank=True)
    submission_guidelines = models.TextField(blank=True)
    leaderboard_description = models.TextField(blank=True)
    image = models.FileField(upload_to="challenges/images/", blank=True, max_length=300)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField()
    published = models.BooleanField(default=False)
    # EvalAI's name for the admin's approval; `review` says whether it was rejected.
    approved_by_admin = models.BooleanField(default=False)
    review = models.CharField(max_length=10, choices=Review.choices, default=Review.PENDING)
    review_note = models.TextField(blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    remote_evaluation = models.BooleanField(default=False)
    # The Celery queue its submissions go to (blank: CELERY_QUEUE), so that a challenge with
    # long evaluations gets workers of its own (`celery worker -Q <name>`) and cannot starve
    # the others. Its tournament model runs go to `<name>-rounds`.
    queue = models.CharField(
        max_length=63,
        blank=True,
        validators=[validate_queue_name],
        help_text="Celery queue of this challenge's evaluations; blank for the default queue. "
        "Start workers for it with `celery -A evalserver worker -Q <name>,<name>-rounds`.",
    )
    is_docker_based = models.BooleanField(default=False)
    is_registration_open = models.BooleanField(default=True)
    anonymous_leaderboard = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True)
    domain = models.CharField(max_length=100, blank=True)
    prizes = models.JSONField(default=list, blank=True)
    sponsors = models.JSONField(default=list, blank=True)
    allowed_email_domains = models.JSONField(default=list, blank=True)
    blocked_email_domains = models.JSONField(default=list, blank=True)
    max_team_members = models.PositiveIntegerField(null=True, blank=True)
    # Kaggle's deadlines (bundle keys). After `entry_deadline` no new team takes part and
    # no one joins a team taking part; after `team_merger_deadline` teams no longer merge.
    # The final submission deadline is the last phase's end (`final_submission_deadline`).
    entry_deadline = models.DateTimeField(null=True, blank=True)
    team_merger_deadline = models.DateTimeField(null=True, blank=True)
    # The config as uploaded (unknown keys included) and the loader's warnings,
    # shown to host and admin.
    config = models.JSONField(default=dict, blank=True)
    load_warnings = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["approved_by_admin", "published"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_date__isnull=True) | Q(start_date__lt=models.F("end_date")),
                name="challenge_start_before_end",
            ),
            models.CheckConstraint(
                condition=~Q(approved_by_admin=True) | Q(review="approved"),
                name="challenge_approval_matches_review",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return (self.start_date is None or self.start_date <= now) and now < self.end_date

    @property
    def final_submission_deadline(self):
        """The last phase's end (the challenge's end when no phase has one)."""
        ends = [p.end_date for p in self.phases.all() if p.end_date is not None]
        return max(ends) if ends else self.end_date

    @property
    def current_script(self) -> EvaluationScript | None:
        return self.scripts.order_by("-version").first()


class EvaluationScript(models.Model):
    """One version of a challenge's evaluation script. Never changed once written:
    submissions record the version that scored them."""

    class EnvStatus(models.TextChoices):
        NOT_NEEDED = "not_needed", "No requirements"
        PENDING = "pending", "Waiting for approval"
        BUILDING = "building", "Installing requirements"
        READY = "ready", "Ready"
        FAILED = "failed", "Installing requirements failed"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="scripts")
    version = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    archive = models.FileField(upload_to="challenges/scripts/", max_length=300)
    # Of the stored archive's bytes (`sha256` is the script's content): workers check what
    # they fetch against it. Blank for versions stored before it was recorded.
    archive_sha256 = models.CharField(max_length=64, blank=True)
    requirements = models.TextField(blank=True)
    # A requirements.txt is installed into a cached environment per version, on approval.
    env_status = models.CharField(
        max_length=12, choices=EnvStatus.choices, default=EnvStatus.NOT_NEEDED
    )
    env_log = models.TextField(blank=True)
    source = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["challenge", "version"]
        constraints = [
            models.UniqueConstraint(fields=["challenge", "version"], name="uniq_script_version"),
        ]

    def __str__(self) -> str:
        return f"{self.challenge} script v{self.version} ({self.sha256[:12]})"


class Leaderboard(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="leaderboards")
    bundle_id = models.IntegerField(help_text="The `id` the bundle gives this leaderboard")
    schema = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["challenge", "bundle_id"], name="uniq_leaderboard_id"),
        ]

    def __str__(self) -> str:
        return f"{self.challenge} leaderboard {self.bundle_id}"

    @property
    def labels(self) -> list[str]:
        return list(self.schema.get("labels", []))


class DatasetSplit(models.Model):
    challenge = models.ForeignKey(
        Challenge, on_delete=models.CASCADE, related_name="dataset_splits"
    )
    bundle_id = models.IntegerField()
    name = models.CharField(max_length=200)
    codename = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["challenge", "codename"], name="uniq_split_codename"),
            models.UniqueConstraint(fields=["challenge", "bundle_id"], name="uniq_split_id"),
        ]

    def __str__(self) -> str:
        return self.codename


class ChallengePhase(models.Model):
    class SubmissionType(models.TextChoices):
        FILE = "file", "File"
        CODE = "code", "Code"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="phases")
    bundle_id = models.IntegerField()
    name = models.CharField(max_length=200)
    codename = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    leaderboard_public = models.BooleanField(default=False)
    is_public = models.BooleanField(default=False)
    is_submission_public = models.BooleanField(default=False)
    max_submissions_per_day = models.PositiveIntegerField(default=100000)
    max_submissions_per_month = models.PositiveIntegerField(default=100000)
    max_submissions = models.PositiveIntegerField(default=100000)
    max_concurrent_submissions_allowed = models.PositiveIntegerField(default=3)
    allowed_submission_file_types = models.JSONField(default=list, blank=True)
    is_restricted_to_select_one_submission = models.BooleanField(default=False)
    is_partial_submission_evaluation_enabled = models.BooleanField(default=False)
    default_submission_meta_attributes = models.JSONField(default=list, blank=True)
    submission_meta_attributes = models.JSONField(default=list, blank=True)
    allowed_email_ids = models.JSONField(default=list, blank=True)
    disable_logs = models.BooleanField(default=False)
    is_submission_paused = models.BooleanField(default=False)
    # Ours: participants see their submissions' stdout and stderr (EvalAI's behaviour) only
    # where the host opts in; by default they get a summary of the failure.
    show_logs_to_participants = models.BooleanField(default=False)
    # Hidden from participants; read only through access functions.
    test_annotation = models.FileField(
        upload_to="challenges/annotations/", blank=True, max_length=300
    )
    test_annotation_sha256 = models.CharField(max_length=64, blank=True)
    # Extensions (ours).
    submission_type = models.CharField(
        max_length=10, choices=SubmissionType.choices, default=SubmissionType.FILE
    )
    test_input = models.FileField(upload_to="challenges/inputs/", blank=True, max_length=300)
    test_input_sha256 = models.CharField(max_length=64, blank=True)
    # Code phases: a second input, passed as predict(features, extra), and the range the
    # predictions must lie in ([low, high]), if any. Hidden like the annotations.
    test_extra = models.FileField(upload_to="challenges/inputs/", blank=True, max_length=300)
    test_extra_sha256 = models.CharField(max_length=64, blank=True)
    prediction_range = models.JSONField(null=True, blank=True)
    public_data = models.JSONField(
        default=list,
        blank=True,
        help_text="[{name, path, sha256, size}] files participants may download",
    )
    resources = models.JSONField(default=dict, blank=True)
    max_final_submissions = models.PositiveIntegerField(null=True, blank=True)
    private_splits_reveal = models.CharField(max_length=20, blank=True)
    max_submission_size_bytes = models.BigIntegerField(null=True, blank=True)
    # Kaggle's late submissions: accepted after the phase ends, scored on every split,
    # shown to their team, never ranked (challenges.services.leaderboard_refresh).
    allow_late_submissions = models.BooleanField(default=False)

    class Meta:
        ordering = ["challenge", "bundle_id"]
        constraints = [
            models.UniqueConstraint(fields=["challenge", "codename"], name="uniq_phase_codename"),
            models.UniqueConstraint(fields=["challenge", "bundle_id"], name="uniq_phase_id"),
        ]

    def __str__(self) -> str:
        return f"{self.challenge} / {self.codename}"

    @property
    def is_open(self) -> bool:
        now = timezone.now()
        if self.start_date and now < self.start_date:
            return False
        return not (self.end_date and now >= self.end_date)


class ChallengePhaseSplit(models.Model):
    class Visibility(models.IntegerChoices):
        HOST = 1, "Host only"
        OWNER_AND_HOST = 2, "Host and the submitting team"
        PUBLIC = 3, "Public"

    phase = models.ForeignKey(ChallengePhase, on_delete=models.CASCADE, related_name="phase_splits")
    dataset_split = models.ForeignKey(DatasetSplit, on_delete=models.CASCADE, related_name="+")
    leaderboard = models.ForeignKey(Leaderboard, on_delete=models.CASCADE, related_name="+")
    visibility = models.PositiveSmallIntegerField(
        choices=Visibility.choices, default=Visibility.PUBLIC
    )
    leaderboard_decimal_precision = models.PositiveSmallIntegerField(default=2)
    is_leaderboard_order_descending = models.BooleanField(default=True)
    show_execution_time = models.BooleanField(default=False)
    show_leaderboard_by_latest_submission = models.BooleanField(default=False)
    # `private_splits_reveal: by_host`: when a host revealed this (host-only) split after
    # its phase ended (challenges.services.hosting.phase_split_reveal).
    revealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["phase", "dataset_split"], name="uniq_phase_split"),
        ]

    def __str__(self) -> str:
        return f"{self.phase} / {self.dataset_split.codename}"

from __future__ import annotations

import copy

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from challenges.access import phases_listed_to
from challenges.html_safe import sanitize_html
from challenges.leaderboard_access import splits_listed_to
from challenges.models import Challenge, ChallengePhase, ChallengePhaseSplit, HostTeam
from challenges.runtime import code_runtime
from challenges.text_checks import NoBidiControls


class PlainInputSerializer(serializers.Serializer):
    """An input serializer of a hot path (every upload makes one): its fields are shallow
    copies of ones made once per class, not DRF's deep copy of every declared field per
    instance (each field's arguments deep-copied and the field made again: half the
    serializer's CPU). Only for fields that, once made, keep nothing they change (plain
    scalar and file fields, no nested serializers): binding sets attributes on the copy."""

    def get_fields(self):
        cls = type(self)
        made = cls.__dict__.get("_made_fields")
        if made is None:
            made = copy.deepcopy(self._declared_fields)
            cls._made_fields = made  # two threads making it at once make equal ones
        return {name: copy.copy(field) for name, field in made.items()}


class HostTeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = HostTeam
        fields = ["id", "name", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_name(self, value: str) -> str:
        NoBidiControls(_("Host team name"))(value)
        return value


class PhaseSplitSerializer(serializers.ModelSerializer):
    dataset_split = serializers.CharField(source="dataset_split.codename")
    labels = serializers.ListField(source="leaderboard.labels", child=serializers.CharField())

    class Meta:
        model = ChallengePhaseSplit
        fields = [
            "dataset_split",
            "labels",
            "visibility",
            "leaderboard_decimal_precision",
            "is_leaderboard_order_descending",
            "show_execution_time",
            "show_leaderboard_by_latest_submission",
        ]


class SanitizedHTMLField(serializers.CharField):
    """A stored HTML field as the pages show it (challenges.html_safe)."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value) -> str:
        return sanitize_html(value)


class PhaseSerializer(serializers.ModelSerializer):
    description = SanitizedHTMLField()
    splits = serializers.SerializerMethodField()
    runtime = serializers.SerializerMethodField(
        help_text="Code phases: the Python version and packages models run with; else null"
    )

    class Meta:
        model = ChallengePhase
        fields = [
            "id",
            "name",
            "codename",
            "description",
            "start_date",
            "end_date",
            "is_open",
            "submission_type",
            "max_submissions_per_day",
            "max_submissions_per_month",
            "max_submissions",
            "max_concurrent_submissions_allowed",
            "allowed_submission_file_types",
            "submission_meta_attributes",
            "is_submission_paused",
            "allow_late_submissions",
            "prediction_range",
            "runtime",
            "splits",
        ]

    def get_runtime(self, phase) -> dict | None:
        if phase.submission_type != ChallengePhase.SubmissionType.CODE:
            return None
        return code_runtime()

    def get_splits(self, phase) -> list[dict]:
        # Host-only splits are listed to hosts only; a private split revealed at the end
        # of its phase is listed to everyone.
        rows = splits_listed_to(self.context.get("is_host", False), phase.phase_splits.all())
        return PhaseSplitSerializer(rows, many=True).data


class ChallengeSerializer(serializers.ModelSerializer):
    host_team = serializers.CharField(source="host_team.name")

    class Meta:
        model = Challenge
        fields = [
            "id",
            "title",
            "short_description",
            "host_team",
            "start_date",
            "end_date",
            "published",
            "approved_by_admin",
            "review",
            "tags",
            "domain",
        ]


class ChallengeDetailSerializer(ChallengeSerializer):
    description = SanitizedHTMLField()
    evaluation_details = SanitizedHTMLField()
    terms_and_conditions = SanitizedHTMLField()
    submission_guidelines = SanitizedHTMLField()
    phases = serializers.SerializerMethodField()
    final_submission_deadline = serializers.DateTimeField(
        read_only=True, help_text="The last phase's end"
    )

    class Meta(ChallengeSerializer.Meta):
        fields = [
            *ChallengeSerializer.Meta.fields,
            "description",
            "evaluation_details",
            "terms_and_conditions",
            "submission_guidelines",
            "is_registration_open",
            "anonymous_leaderboard",
            "max_team_members",
            "entry_deadline",
            "team_merger_deadline",
            "final_submission_deadline",
            "prizes",
            "sponsors",
            "phases",
        ]

    def get_phases(self, challenge) -> list[dict]:
        phases = phases_listed_to(self.context.get("is_host", False), challenge.phases.all())
        return PhaseSerializer(phases, many=True, context=self.context).data


class BundleUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The challenge zip (EvalAI layout)")
    host_team = serializers.CharField(
        required=False, help_text="Host team id or name (default: your only host team)"
    )
    approve = serializers.BooleanField(required=False, default=False, help_text="Staff only")
    new_challenge = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Create a new challenge even if your host team has one with this title "
        "(otherwise 409: upload a new version to that challenge's bundle/ instead)",
    )

    def validate_file(self, value):
        if value.size > settings.BUNDLE_MAX_UPLOAD_BYTES:
            raise serializers.ValidationError(
                _("The bundle is %(size)s bytes; the limit is %(BUNDLE_MAX_UPLOAD_BYTES)s.")
                % {"size": value.size, "BUNDLE_MAX_UPLOAD_BYTES": settings.BUNDLE_MAX_UPLOAD_BYTES}
            )
        return value


class ProblemSerializer(serializers.Serializer):
    severity = serializers.CharField()
    file = serializers.CharField()
    key = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    column = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class BundleLoadedSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="challenge.pk")
    title = serializers.CharField(source="challenge.title")
    created = serializers.BooleanField()
    approved_by_admin = serializers.BooleanField(source="challenge.approved_by_admin")
    script_version = serializers.IntegerField(source="script.version")
    script_sha256 = serializers.CharField(source="script.sha256")
    script_changed = serializers.BooleanField()
    warnings = serializers.SerializerMethodField()

    def get_warnings(self, result) -> list[dict]:
        return [w.as_dict() for w in result.warnings]

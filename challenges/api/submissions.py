"""REST API: submissions, their status and logs, quotas, cancel, re-run and re-score."""

from __future__ import annotations

from django.conf import settings
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:> and <codename:>)
from challenges.access import (
    access_phase,
    require_challenge_host,
    require_participation,
    user_is_challenge_host,
)
from challenges.api.downloads import stored_file_response
from challenges.api.parsers import BoundedJSONParser
from challenges.api.serializers import PlainInputSerializer
from challenges.failure_text import participant_failure_text
from challenges.json_limits import json_loads_bounded
from challenges.models import Submission
from challenges.selectors import participation_for_user
from challenges.services.storage import safe_basename
from challenges.services.submission_choices import (
    submission_set_baseline,
    submission_set_final,
    submission_set_public,
)
from challenges.services.submissions import (
    SubmissionFields,
    max_upload_bytes,
    phase_rescore,
    quota_state,
    submission_cancel,
    submission_create,
    submission_rerun,
    team_storage_check,
)
from challenges.submission_access import (
    SubmissionView,
    access_phase_submitter,
    access_submission,
)
from challenges.throttles import submit_throttles


class SubmissionCreateSerializer(PlainInputSerializer):
    file = serializers.FileField()
    method_name = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, default=""
    )
    method_description = serializers.CharField(required=False, allow_blank=True, default="")
    project_url = serializers.URLField(required=False, allow_blank=True, default="")
    publication_url = serializers.URLField(required=False, allow_blank=True, default="")
    meta_attributes = serializers.CharField(
        required=False,
        default="",
        help_text='JSON object of the phase\'s meta attributes, e.g. {"Model": "resnet"}',
    )
    is_public = serializers.BooleanField(required=False, allow_null=True, default=None)
    is_baseline = serializers.BooleanField(required=False, default=False)

    def validate_meta_attributes(self, value: str):
        if not value:
            return {}
        try:
            parsed = json_loads_bounded(value, where="meta_attributes")
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if not isinstance(parsed, dict):
            raise serializers.ValidationError(_("must be a JSON object of name -> value"))
        return parsed


class ResultSerializer(serializers.Serializer):
    split = serializers.CharField(source="phase_split.dataset_split.codename")
    scores = serializers.JSONField()
    labels = serializers.ListField(
        source="phase_split.leaderboard.labels", child=serializers.CharField()
    )


class SubmissionOutSerializer(serializers.ModelSerializer):
    """A submission as its team or its hosts see it. Pass `context={"is_host": True}` for
    hosts: everyone else reads the failure message as `participant_failure_text` leaves it."""

    team = serializers.CharField(source="team.name")
    phase = serializers.CharField(source="phase.codename")
    challenge = serializers.IntegerField(source="phase.challenge_id")
    failure_message = serializers.SerializerMethodField()
    merged_from_team = serializers.CharField(
        source="merged_from_team.name",
        allow_null=True,
        default=None,
        help_text="The team that made it, when a team merge moved it to this team",
    )

    class Meta:
        model = Submission
        fields = [
            "id",
            "challenge",
            "phase",
            "team",
            "status",
            "file_name",
            "input_sha256",
            "input_size",
            "input_purged_at",
            "method_name",
            "submitted_at",
            "started_at",
            "finished_at",
            "attempt",
            "is_public",
            "is_baseline",
            "is_final",
            "is_late",
            "merged_from_team",
            "failure_kind",
            "failure_message",
        ]

    def get_failure_message(self, submission) -> str:
        if self.context.get("is_host"):
            return submission.failure_message
        return participant_failure_text(submission.failure_message)


def submission_payload(view: SubmissionView, request) -> dict:
    s = view.submission
    data = SubmissionOutSerializer(s, context={"is_host": view.is_host}).data
    data["results"] = ResultSerializer(view.visible_results(), many=True).data
    data["submission_result"] = s.submission_result if (view.is_host or view.is_owner) else None
    base = request.build_absolute_uri(f"/api/v1/submissions/{s.pk}/")
    data["links"] = {}
    if view.can_see_logs:
        data["links"] = {"stdout": base + "stdout/", "stderr": base + "stderr/"}
    if view.can_see_traceback:
        data["traceback"] = s.traceback
    if view.can_see_host_metadata:
        data["submission_metadata"] = s.submission_metadata
        data["execution"] = s.execution
        data["script_version"] = s.script.version if s.script else None
        data["worker"] = s.worker
    return data


class PhaseSubmissions(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    def get_throttles(self):
        # Uploads cost disk and worker time; reading one's list costs little.
        return [t() for t in submit_throttles()] if self.request.method == "POST" else []

    @extend_schema(
        request=SubmissionCreateSerializer,
        responses={
            201: OpenApiResponse(description="{id, status}"),
            429: OpenApiResponse(description="quota or submit rate reached; see Retry-After"),
        },
    )
    def post(self, request, challenge_id: int, codename: str):
        """Submit a file to a phase. Answers 201 with the id and status; 429 names the quota reached."""
        # The phase and the participation (its ids are all the upload reads of it,
        # submission_create too), in one statement where they can be.
        submitter = access_phase_submitter(request.user, challenge_id, codename=codename)
        phase = submitter.phase
        participation = submitter.participation
        if participation is not None:
            # Before the body is parsed (and spooled to a temporary file): a body larger
            # than the team's remaining storage plus what the form's other fields may take
            # cannot fit. The exact check follows in submission_create.
            slack = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 65536
            length = request.META.get("CONTENT_LENGTH") or ""
            if length.isdigit() and int(length) > slack:
                team_storage_check(
                    challenge_id=phase.challenge_id,
                    team_id=participation.team_id,
                    incoming=int(length) - slack,
                )
        params = SubmissionCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        # Hosts cannot join their own challenge; they submit as its host team, which
        # submission_create makes on their first submission.
        submission = submission_create(
            submitter=submitter,
            upload=data["file"],
            fields=SubmissionFields.from_mapping(data),
        )
        return Response(
            {"id": submission.pk, "status": submission.status}, status=status.HTTP_201_CREATED
        )

    @extend_schema(responses=SubmissionOutSerializer(many=True))
    def get(self, request, challenge_id: int, codename: str):
        """Your team's submissions to the phase (hosts: everyone's)."""
        phase = access_phase(request.user, challenge_id, codename=codename)
        qs = Submission.objects.filter(phase=phase).select_related(
            "team", "phase", "merged_from_team"
        )
        is_host = user_is_challenge_host(request.user, phase.challenge)
        if not is_host:
            participation = participation_for_user(request.user, phase.challenge)
            qs = qs.filter(team_id=participation.team_id if participation else -1)
        return Response(
            SubmissionOutSerializer(qs[:500], many=True, context={"is_host": is_host}).data
        )


class PhaseQuota(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses=OpenApiResponse(description="per quota: limit, used, remaining, resets_at")
    )
    def get(self, request, challenge_id: int, codename: str):
        """What your team may still submit to the phase, per quota, and when each resets."""
        phase = access_phase(request.user, challenge_id, codename=codename)
        participation = participation_for_user(request.user, phase.challenge)
        require_participation(participation)
        states = quota_state(phase=phase, team_id=participation.team_id)
        return Response(
            {
                "remaining": min(s.remaining for s in states),
                "max_file_bytes": max_upload_bytes(phase),
                "allowed_file_types": phase.allowed_submission_file_types,
                "quotas": [s.as_dict() for s in states],
            }
        )


class SubmissionChoices(serializers.Serializer):
    is_public = serializers.BooleanField(required=False)
    is_final = serializers.BooleanField(required=False)
    is_baseline = serializers.BooleanField(required=False)


class SubmissionDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [BoundedJSONParser, FormParser]

    @extend_schema(
        responses=OpenApiResponse(description="status, per-split results, links to logs")
    )
    def get(self, request, submission_id: int):
        view = access_submission(request.user, submission_id)
        return Response(submission_payload(view, request))

    @extend_schema(request=SubmissionChoices, responses=SubmissionOutSerializer)
    def patch(self, request, submission_id: int):
        """The team: is_public (show on the leaderboard), is_final (a final pick).
        Hosts: is_baseline."""
        view = access_submission(request.user, submission_id)
        params = SubmissionChoices(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        submission = view.submission
        if "is_baseline" in data:
            submission = submission_set_baseline(
                submission=submission, user=request.user, is_baseline=data["is_baseline"]
            )
        if "is_public" in data:
            submission = submission_set_public(
                submission=submission, user=request.user, is_public=data["is_public"]
            )
        if "is_final" in data:
            submission = submission_set_final(
                submission=submission, user=request.user, is_final=data["is_final"]
            )
        return Response(SubmissionOutSerializer(submission, context={"is_host": view.is_host}).data)


class SubmissionLog(APIView):
    permission_classes = [permissions.IsAuthenticated]
    stream = "stdout"

    @extend_schema(responses={200: OpenApiResponse(description="text/plain")})
    def get(self, request, submission_id: int):
        view = access_submission(request.user, submission_id)
        view.require_logs()
        from django.http import HttpResponse

        return HttpResponse(
            getattr(view.submission, self.stream), content_type="text/plain; charset=utf-8"
        )


class SubmissionFile(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="submission_file",
        responses={
            200: OpenApiResponse(description="the submitted file's bytes"),
            206: OpenApiResponse(description="one byte range of it (Range)"),
            416: OpenApiResponse(description="the range is outside the file"),
        },
    )
    def get(self, request, submission_id: int):
        """The file the team submitted (the team and the hosts): resumable with Range and
        If-Range, ETag = its sha256."""
        view = access_submission(request.user, submission_id)
        s = view.submission
        if s.input_purged_at is not None or not s.input_file:
            raise Submission.DoesNotExist
        return stored_file_response(
            request,
            name=s.input_file.name,
            filename=safe_basename(s.file_name, default="submission"),
            sha256=s.input_sha256,
            size=s.input_size,
        )


class SubmissionCancel(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [BoundedJSONParser, FormParser]

    @extend_schema(request=None, responses=SubmissionOutSerializer)
    def post(self, request, submission_id: int):
        view = access_submission(request.user, submission_id)
        submission_cancel(submission=view.submission, user=request.user)
        view.submission.refresh_from_db()
        return Response(
            SubmissionOutSerializer(view.submission, context={"is_host": view.is_host}).data
        )


class SubmissionRerun(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [BoundedJSONParser, FormParser]

    @extend_schema(request=None, responses=SubmissionOutSerializer)
    def post(self, request, submission_id: int):
        view = access_submission(request.user, submission_id)
        submission = submission_rerun(submission=view.submission, user=request.user)
        return Response(SubmissionOutSerializer(submission, context={"is_host": view.is_host}).data)


class PhaseRescore(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [BoundedJSONParser, FormParser]

    @extend_schema(request=None, responses=OpenApiResponse(description="{rerun: count}"))
    def post(self, request, challenge_id: int, codename: str):
        """Re-run every ended submission of the phase with the current script version."""
        phase = access_phase(request.user, challenge_id, codename=codename)
        require_challenge_host(request.user, phase.challenge, _("re-score a phase"))
        return Response({"rerun": phase_rescore(phase=phase, user=request.user)})


urlpatterns = [
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/submissions/",
        PhaseSubmissions.as_view(),
        name="api-phase-submissions",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/quota/",
        PhaseQuota.as_view(),
        name="api-phase-quota",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/rescore/",
        PhaseRescore.as_view(),
        name="api-phase-rescore",
    ),
    path("submissions/<id:submission_id>/", SubmissionDetail.as_view(), name="api-submission"),
    path(
        "submissions/<id:submission_id>/stdout/",
        SubmissionLog.as_view(stream="stdout"),
        name="api-submission-stdout",
    ),
    path(
        "submissions/<id:submission_id>/stderr/",
        SubmissionLog.as_view(stream="stderr"),
        name="api-submission-stderr",
    ),
    path(
        "submissions/<id:submission_id>/file/",
        SubmissionFile.as_view(),
        name="api-submission-file",
    ),
    path(
        "submissions/<id:submission_id>/cancel/",
        SubmissionCancel.as_view(),
        name="api-submission-cancel",
    ),
    path(
        "submissions/<id:submission_id>/rerun/",
        SubmissionRerun.as_view(),
        name="api-submission-rerun",
    ),
]

"""EvalAI's apps/jobs routes: submitting, a team's submissions, one submission and its
files, and leaderboards by phase split."""

from __future__ import annotations

import json
from typing import Any

from django.core import signing
from django.http import FileResponse, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from challenges.access import access_phase, user_is_challenge_host
from challenges.api.evalai import shapes
from challenges.api.evalai.base import EvalAIView, paginated, read_file_link
from challenges.api.leaderboards import MAX_OFFSET
from challenges.attachments import content_disposition
from challenges.json_limits import json_loads_bounded
from challenges.leaderboard_access import access_leaderboard
from challenges.models import ChallengePhase, ChallengePhaseSplit, Submission
from challenges.selectors import host_team_participation, participation_for_user
from challenges.selectors.leaderboards import leaderboard_page, ordering_for
from challenges.services.large_uploads import (
    large_upload_finish,
    large_upload_part_store,
    large_upload_start,
)
from challenges.services.storage import open_stored, safe_basename
from challenges.services.submissions import (
    SubmissionFields,
    SubmissionRefused,
    submission_create,
)
from challenges.submission_access import SubmissionView, access_submission, access_submitter
from challenges.throttles import submit_throttles


class SubmissionFieldsInput(serializers.Serializer):
    method_name = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, default=""
    )
    method_description = serializers.CharField(required=False, allow_blank=True, default="")
    project_url = serializers.URLField(required=False, allow_blank=True, default="")
    publication_url = serializers.URLField(required=False, allow_blank=True, default="")
    is_public = serializers.CharField(required=False, allow_blank=True, default="")
    submission_metadata = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_is_public(self, value: str) -> bool | None:
        lowered = value.strip().lower()
        if lowered in ("", "none", "null"):
            return None
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise serializers.ValidationError(_("must be true or false"))

    def validate_submission_metadata(self, value: str) -> dict[str, Any]:
        """EvalAI's CLI sends the phase's meta attributes as a JSON list of definitions,
        each with its `value` (or `values` for checkboxes); ours are a dict by name."""
        if not value.strip():
            return {}
        try:
            parsed = json_loads_bounded(value, where="submission_metadata")
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if isinstance(parsed, dict):
            return parsed
        if not isinstance(parsed, list):
            raise serializers.ValidationError(_("must be a JSON list of meta attributes"))
        meta = {}
        for item in parsed:
            if not isinstance(item, dict) or "name" not in item:
                raise serializers.ValidationError(_("each meta attribute needs a name"))
            picked = item.get("values", item.get("value"))
            if picked not in (None, "", []):
                meta[str(item["name"])] = picked
        return meta


class SubmissionInput(SubmissionFieldsInput):
    input_file = serializers.FileField()


def fields_of(data: dict[str, Any]) -> SubmissionFields:
    """The submission's fields from `SubmissionFieldsInput` (EvalAI's name for the meta
    attributes is `submission_metadata`)."""
    return SubmissionFields.from_mapping({**data, "meta_attributes": data["submission_metadata"]})


def json_object(request) -> dict:
    """The request's body as the dict every EvalAI route expects: a JSON array or string
    is the client's mistake (400), not our 500."""
    if not isinstance(request.data, dict):
        raise SubmissionRefused(_("The request body must be a JSON object or a form."))
    return request.data


def phase_by_pk(user, phase_pk) -> ChallengePhase:
    challenge_id = ChallengePhase.objects.values_list("challenge_id", flat=True).get(pk=phase_pk)
    return access_phase(user, challenge_id, phase_id=phase_pk)


class PhaseSubmissions(EvalAIView):
    parser_classes = [MultiPartParser, FormParser]

    def get_throttles(self):
        # The same submit rate as /api/v1/ (one rule, challenges.throttles).
        return [t() for t in submit_throttles()] if self.request.method == "POST" else []

    def post(self, request, challenge_pk: int, phase_pk: int):
        phase = access_phase(request.user, challenge_pk, phase_id=phase_pk)
        params = SubmissionInput(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        submission = submission_create(
            submitter=access_submitter(request.user, phase),
            upload=data["input_file"],
            fields=fields_of(data),
        )
        view = access_submission(request.user, submission.pk)
        return Response(shapes.submission(view, request), status=status.HTTP_201_CREATED)

    def get(self, request, challenge_pk: int, phase_pk: int):
        """The reader's team's submissions to the phase, newest first."""
        phase = access_phase(request.user, challenge_pk, phase_id=phase_pk)
        is_host = user_is_challenge_host(request.user, phase.challenge)
        participation = participation_for_user(request.user, phase.challenge)
        if participation is None and is_host:
            # Hosts' baselines and trial runs are their team's submissions.
            participation = host_team_participation(phase.challenge)
        if participation is None:
            raise SubmissionRefused(_("You haven't participated in the challenge"))
        qs = (
            Submission.objects.filter(phase=phase, team_id=participation.team_id)
            .select_related("team", "created_by", "phase")
            .order_by("-submitted_at", "-pk")
        )

        def render(s: Submission) -> dict:
            # The reader is on the submitting team, or hosts it (the filter above).
            return shapes.submission(SubmissionView(s, is_host=is_host, is_owner=True), request)

        return paginated(self, qs, render)


class SubmissionDetail(EvalAIView):
    def get(self, request, pk: int):
        view = access_submission(request.user, pk)
        return Response(shapes.submission(view, request))


class SubmissionFile(APIView):
    """The links handed out in submission answers: signed and short-lived, no token needed
    (EvalAI's CLI and remote worker fetch them with plain GETs)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    schema = None

    def get(self, request, token: str, name: str):
        try:
            link = read_file_link(token)
        except signing.BadSignature:
            return JsonResponse(
                {
                    "error": _(
                        "This link is not valid or has expired; ask for the submission again."
                    )
                },
                status=status.HTTP_403_FORBIDDEN,
            )
        submission = Submission.objects.select_related("phase").get(pk=link["s"])
        kind = link["k"]
        if link.get("a") is not None and link["a"] != submission.attempt:
            return JsonResponse(
                {"error": _("The submission was evaluated again; ask for it again.")},
                status=status.HTTP_403_FORBIDDEN,
            )
        if kind in ("stdout", "stderr") and not link.get("h"):
            phase = submission.phase
            if not phase.show_logs_to_participants or phase.disable_logs:
                return JsonResponse(
                    {"error": _("The hosts do not show logs.")}, status=status.HTTP_403_FORBIDDEN
                )
        if kind == "input" and submission.input_purged_at is not None:
            return JsonResponse(
                {"error": _("This failed submission's file was removed after its retention.")},
                status=status.HTTP_404_NOT_FOUND,
            )
        if kind == "input":
            response = FileResponse(open_stored(submission.input_file.name))
            # The name as typed (提出.csv), with an ASCII fallback for old clients.
            response["Content-Disposition"] = content_disposition(
                safe_basename(submission.file_name, default="submission")
            )
            return response
        if kind in ("stdout", "stderr"):
            return HttpResponse(getattr(submission, kind), content_type="text/plain; charset=utf-8")
        if kind == "result":
            view = SubmissionView(submission, is_host=bool(link.get("h")), is_owner=True)
            rows = [
                {r.phase_split.dataset_split.codename: r.scores} for r in view.visible_results()
            ]
            return HttpResponse(json.dumps(rows), content_type="application/json")
        return JsonResponse({"error": _("Unknown file.")}, status=status.HTTP_404_NOT_FOUND)


class Leaderboard(EvalAIView):
    """`challenge_phase_split/<pk>/leaderboard/`: the ranked rows the reader may see,
    100 a page, in EvalAI's LeaderboardData shape."""

    permission_classes = [permissions.AllowAny]
    page_size = 100

    def get(self, request, split_pk: int):
        split = ChallengePhaseSplit.objects.select_related("phase", "dataset_split").get(
            pk=split_pk
        )
        view = access_leaderboard(
            request.user,
            split.phase.challenge_id,
            split.phase.codename,
            split.dataset_split.codename,
        )
        ordering = ordering_for(view, request.query_params.get("order_by") or None)
        try:
            number = max(int(request.query_params.get("page", "1")), 1)
        except ValueError:
            raise SubmissionRefused(_("page must be a number"), field="page") from None
        if number > MAX_OFFSET // self.page_size:
            raise SubmissionRefused(_("page is too large"), field="page")
        page = leaderboard_page(
            view, ordering, offset=(number - 1) * self.page_size, limit=self.page_size
        )
        labels = view.split.leaderboard.labels
        order_index = labels.index(ordering.label) if ordering.label in labels else 0
        results = [shapes.leaderboard_row(row, view.split, order_index) for row in page.rows]

        def link(n: int) -> str:
            return request.build_absolute_uri(f"{request.path}?page={n}")

        return Response(
            {
                "count": page.count,
                "next": link(number + 1) if number * self.page_size < page.count else None,
                "previous": link(number - 1) if number > 1 else None,
                "results": results,
            }
        )


class LargeUploadStart(EvalAIView):
    """`phases/<pk>/get_submission_file_presigned_url/`: one upload URL per 20 MiB part
    (on this server), the upload's id and the id its submission will have."""

    def get_throttles(self):
        return [t() for t in submit_throttles()]

    def post(self, request, phase_pk: int):
        json_object(request)
        phase = phase_by_pk(request.user, phase_pk)
        params = SubmissionFieldsInput(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            parts = int(request.data.get("num_file_chunks", 1))
        except (TypeError, ValueError):
            raise SubmissionRefused(
                _("num_file_chunks must be a number."), field="num_file_chunks"
            ) from None
        data = params.validated_data
        upload = large_upload_start(
            submitter=access_submitter(request.user, phase),
            file_name=str(request.data.get("file_name", "")),
            parts=parts,
            fields=fields_of(data),
        )
        urls = [
            {
                "partNumber": n,
                "url": request.build_absolute_uri(f"/api/jobs/uploads/{upload.upload_id}/{n}/"),
            }
            for n in range(1, upload.parts + 1)
        ]
        return Response(
            {
                "presigned_urls": urls,
                "upload_id": upload.upload_id,
                "submission_pk": upload.submission_pk,
            },
            status=status.HTTP_201_CREATED,
        )


@method_decorator(csrf_exempt, name="dispatch")
class LargeUploadPart(View):
    """PUT one part, as to a presigned URL: no token, the signed upload id is the key."""

    def put(self, request, upload_id: str, number: str):
        try:
            etag = large_upload_part_store(upload_id=upload_id, number=int(number), stream=request)
        except SubmissionRefused as exc:
            return JsonResponse({"error": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        response = HttpResponse(status=status.HTTP_200_OK)
        response["ETag"] = etag
        return response


class LargeUploadFinish(EvalAIView):
    def post(self, request, phase_pk: int, submission_pk: int):
        json_object(request)
        phase = phase_by_pk(request.user, phase_pk)
        submission = large_upload_finish(
            submitter=access_submitter(request.user, phase),
            upload_id=str(request.data.get("upload_id", "")),
            submission_pk=int(submission_pk),
        )
        return Response(
            {"upload_id": request.data.get("upload_id"), "submission_pk": submission.pk}
        )


class SendSubmissionMessage(EvalAIView):
    """EvalAI queues the submission here; ours was queued when it was made."""

    def post(self, request, phase_pk: int, submission_pk: int):
        view = access_submission(request.user, submission_pk)
        if str(view.submission.phase_id) != str(phase_pk):
            raise Submission.DoesNotExist
        return Response({"message": _("Submission %(pk)s is queued") % {"pk": view.submission.pk}})

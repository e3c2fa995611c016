"""REST API of model uploads (DESIGN section 16): a model's status and cause, its
diagnostics (JSON and CSV), a bot's upload of validation predictions, and the runtimes a
model may run under."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from challenges.attachments import rows_csv_response
from challenges.throttles import submit_throttles
from challenges.tournaments.access import access_team_model
from challenges.tournaments.model_runs import (
    DIAGNOSTICS_CSV_COLUMNS,
    SUMMARY_KEYS,
    model_diagnostics_rows,
    model_diagnostics_upload,
)
from challenges.tournaments.runtimes import runtime_default, runtimes_describe


class Runtimes(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: OpenApiResponse(description="runtimes")})
    def get(self, request):
        """The Python versions a model may be pickled with, each with its package versions;
        `default` is what an upload without `python_version` runs under."""
        return Response({"default": runtime_default(), "runtimes": runtimes_describe()})


class DiagnosticsIn(serializers.Serializer):
    file = serializers.FileField()


class ModelDiagnostics(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    def get_throttles(self):
        return [t() for t in submit_throttles()] if self.request.method == "POST" else []

    @extend_schema(responses={200: OpenApiResponse(description="diagnostics (or text/csv)")})
    def get(self, request, model_id: int):
        """The model's status, its cause when it failed, and its diagnostics on the
        validation data: the summary and the per-era series."""
        model = access_team_model(request.user, model_id)
        rows = model_diagnostics_rows(model)
        diagnostics = model.diagnostics or {}
        return Response(
            {
                "model": model.pk,
                "status": model.status,
                "failure_cause": model.failure_cause,
                "failure_message": model.failure_message,
                "python_version": model.python_version,
                "summary": {k: diagnostics[k] for k in SUMMARY_KEYS if k in diagnostics},
                "per_era": rows,
            }
        )

    @extend_schema(request=DiagnosticsIn, responses={202: OpenApiResponse(description="queued")})
    def post(self, request, model_id: int):
        """Upload validation predictions (id,prediction over the validation rows) for one of
        your team's models; they are diagnosed as the model's own would be."""
        params = DiagnosticsIn(data=request.data)
        params.is_valid(raise_exception=True)
        model = model_diagnostics_upload(
            user=request.user,
            model=access_team_model(request.user, model_id),
            upload=params.validated_data["file"],
        )
        return Response(
            {"model": model.pk, "status": model.status}, status=status.HTTP_202_ACCEPTED
        )


class ModelDiagnosticsCsv(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiResponse(description="text/csv, one row per era")})
    def get(self, request, model_id: int):
        """The per-era diagnostics of one of your team's models, as CSV."""
        model = access_team_model(request.user, model_id)
        rows = model_diagnostics_rows(model)
        name = f"model-{model.pk}-diagnostics.csv"
        return rows_csv_response(request, rows, list(DIAGNOSTICS_CSV_COLUMNS), name)


urlpatterns = [
    path("tournament-runtimes/", Runtimes.as_view(), name="api-tournament-runtimes"),
    path(
        "tournament-models/<id:model_id>/diagnostics/",
        ModelDiagnostics.as_view(),
        name="api-tournament-model-diagnostics",
    ),
    path(
        "tournament-models/<id:model_id>/diagnostics.csv",
        ModelDiagnosticsCsv.as_view(),
        name="api-tournament-model-diagnostics-csv",
    ),
]

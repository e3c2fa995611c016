"""REST API: a phase's analytics for its hosts, as JSON and as CSV (challenges.analytics)."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:> and <codename:>)
from challenges.access import access_phase, require_challenge_host
from challenges.analytics.export import analytics_csv
from challenges.analytics.phase import phase_analytics


class PhaseAnalytics(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses=OpenApiResponse(
            description="teams_over_time, participants_over_time, submissions_per_day, "
            "failure_classes, evaluation_time_s, splits [{split, label, distribution, "
            "best_over_time}], last_submission_per_team"
        )
    )
    def get(self, request, challenge_id: int, codename: str):
        """Hosts: the phase's analytics."""
        phase = access_phase(request.user, challenge_id, codename=codename)
        require_challenge_host(request.user, phase.challenge, _("see analytics"))
        return Response(phase_analytics(phase))


class PhaseAnalyticsCsv(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiResponse(description="text/csv")})
    def get(self, request, challenge_id: int, codename: str):
        """Hosts: the same numbers as CSV rows (section, date, name, value)."""
        phase = access_phase(request.user, challenge_id, codename=codename)
        require_challenge_host(request.user, phase.challenge, _("see analytics"))
        response = HttpResponse(
            analytics_csv(phase_analytics(phase)), content_type="text/csv; charset=utf-8"
        )
        name = f"analytics-{phase.challenge_id}-{phase.codename}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


urlpatterns = [
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/analytics/",
        PhaseAnalytics.as_view(),
        name="api-phase-analytics",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/analytics.csv",
        PhaseAnalyticsCsv.as_view(),
        name="api-phase-analytics-csv",
    ),
]

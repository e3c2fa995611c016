"""REST API: the files a phase's bundle lists as `public_data`, for its participants."""

from __future__ import annotations

from django.urls import path, reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:> and <codename:>)
from challenges.access import access_phase_data
from challenges.api.downloads import stored_file_response
from challenges.models import ChallengePhase


class PhaseDataList(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="phase_data_list",
        responses=OpenApiResponse(description="[{name, size, sha256, url}]"),
    )
    def get(self, request, challenge_id: int, codename: str):
        """The phase's public data files: name, size in bytes, sha256 and download URL."""
        phase = access_phase_data(request.user, challenge_id, codename)
        return Response(
            [
                {
                    "name": item["name"],
                    "size": item["size"],
                    "sha256": item["sha256"],
                    "url": request.build_absolute_uri(
                        reverse(
                            "api-phase-data-file",
                            args=[phase.challenge_id, phase.codename, item["name"]],
                        )
                    ),
                }
                for item in phase.public_data
            ]
        )


class PhaseDataFile(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="phase_data_file", responses=OpenApiResponse(description="the file's bytes")
    )
    def get(self, request, challenge_id: int, codename: str, name: str):
        """Download one public data file: streamed, resumable with Range and If-Range
        (ETag: the file's sha256); under object storage, a redirect to a short-lived URL."""
        phase = access_phase_data(request.user, challenge_id, codename)
        # The name is looked up, never used as a path.
        item = next((i for i in phase.public_data if i["name"] == name), None)
        if item is None:
            raise ChallengePhase.DoesNotExist
        return stored_file_response(
            request, name=item["path"], filename=name, sha256=item["sha256"], size=item["size"]
        )


urlpatterns = [
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/data/",
        PhaseDataList.as_view(),
        name="api-phase-data",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/data/<codename:name>",
        PhaseDataFile.as_view(),
        name="api-phase-data-file",
    ),
]

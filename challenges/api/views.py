"""REST API for challenges and host teams. Views parse, call one service or selector, answer."""

from __future__ import annotations

from django.db import IntegrityError
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from challenges.access import (
    access_challenge,
    access_challenge_as_host,
    access_host_team,
    challenges_visible_to,
    require_staff,
    user_is_challenge_host,
)
from challenges.api import serializers as s
from challenges.models import HostTeam
from challenges.services.bundles import bundle_validate, challenge_load_bundle
from challenges.services.teams import host_team_create


def resolve_host_team(user, value: str | None) -> HostTeam:
    teams = HostTeam.objects.filter(memberships__user=user)
    if value:
        return access_host_team(user, value)
    mine = list(teams[:2])
    if not mine:
        raise serializers.ValidationError(
            {
                "host_team": _(
                    'You are in no host team. Create one first: POST /api/v1/host-teams/ {"name": ...}.'
                )
            }
        )
    if len(mine) > 1:
        raise serializers.ValidationError(
            {"host_team": _("You are in several host teams: say which one.")}
        )
    return mine[0]


class HostTeamListCreate(generics.ListCreateAPIView):
    serializer_class = s.HostTeamSerializer
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = None

    def get_queryset(self):
        return HostTeam.objects.filter(memberships__user=self.request.user).order_by("name")

    def perform_create(self, serializer):
        try:
            serializer.instance = host_team_create(
                name=serializer.validated_data["name"], creator=self.request.user
            )
        except IntegrityError:
            raise serializers.ValidationError(
                {"name": _("A host team with this name exists.")}
            ) from None


class ChallengeList(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=s.ChallengeSerializer(many=True))
    def get(self, request):
        qs = challenges_visible_to(request.user).order_by("-created_at")
        return Response(s.ChallengeSerializer(qs, many=True).data)

    @extend_schema(request=s.BundleUploadSerializer, responses={201: s.BundleLoadedSerializer})
    def post(self, request):
        """Upload a challenge bundle (zip). Every problem is listed in `errors` on a 400."""
        params = s.BundleUploadSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        team = resolve_host_team(request.user, params.validated_data.get("host_team"))
        approve = params.validated_data["approve"]
        if approve:
            require_staff(request.user, _("approve challenges"))
        result = challenge_load_bundle(
            source=params.validated_data["file"],
            user=request.user,
            host_team=team,
            approve=approve,
            new_challenge=params.validated_data["new_challenge"],
        )
        return Response(s.BundleLoadedSerializer(result).data, status=status.HTTP_201_CREATED)


class ChallengeDetail(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=s.ChallengeDetailSerializer)
    def get(self, request, challenge_id: int):
        challenge = access_challenge(request.user, challenge_id)
        context = {"is_host": user_is_challenge_host(request.user, challenge)}
        return Response(s.ChallengeDetailSerializer(challenge, context=context).data)


class ChallengeBundleUpload(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=s.BundleUploadSerializer, responses={200: s.BundleLoadedSerializer})
    def post(self, request, challenge_id: int):
        """Upload a new version of an existing challenge's bundle (new script version, new annotations)."""
        challenge = access_challenge_as_host(request.user, challenge_id)
        params = s.BundleUploadSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        result = challenge_load_bundle(
            source=params.validated_data["file"],
            user=request.user,
            host_team=challenge.host_team,
            challenge=challenge,
        )
        return Response(s.BundleLoadedSerializer(result).data)


class BundleValidate(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=s.BundleUploadSerializer, responses=s.ProblemSerializer(many=True))
    def post(self, request):
        """Check a bundle without loading it: every error and warning."""
        params = s.BundleUploadSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        problems = bundle_validate(source=params.validated_data["file"])
        valid = not any(p.severity == "error" for p in problems)
        return Response({"valid": valid, "problems": [p.as_dict() for p in problems]})

"""REST API: participant teams and participation in challenges."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:> and <codename:>)
from challenges.access import access_challenge
from challenges.ids import MAX_ID
from challenges.models import ChallengeParticipation, ParticipantTeam
from challenges.selectors import participation_for_user, teams_of_user
from challenges.services.participation import (
    TEAM_NAME_MAX_LENGTH,
    challenge_participate,
    participant_team_create,
    participant_team_join,
    participant_team_leave,
    participant_team_rotate_code,
)

# Serializers


class TeamCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=TEAM_NAME_MAX_LENGTH)


class TeamJoinInput(serializers.Serializer):
    invitation_code = serializers.CharField(max_length=64)


class ParticipateInput(serializers.Serializer):
    team = serializers.IntegerField(
        min_value=0, max_value=MAX_ID, help_text="Id of your participant team"
    )
    accept_terms = serializers.BooleanField(
        default=False, help_text="Must be true: you accept the challenge's terms and conditions"
    )


class TeamSerializer(serializers.ModelSerializer):
    """A team as its members see it (only members are ever shown a team this way)."""

    members = serializers.SlugRelatedField(many=True, read_only=True, slug_field="username")
    created_by = serializers.SlugRelatedField(read_only=True, slug_field="username")
    challenges = serializers.SerializerMethodField(
        help_text="Ids of challenges the team takes part in"
    )

    class Meta:
        model = ParticipantTeam
        fields = [
            "id",
            "name",
            "invitation_code",
            "members",
            "created_by",
            "created_at",
            "challenges",
        ]
        read_only_fields = fields

    def get_challenges(self, team) -> list[int]:
        return [p.challenge_id for p in team.participations.all()]


class TeamRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ParticipantTeam
        fields = ["id", "name"]


class ParticipationSerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    challenge_title = serializers.CharField(source="challenge.title", read_only=True)
    accepted_terms_by = serializers.SlugRelatedField(read_only=True, slug_field="username")

    class Meta:
        model = ChallengeParticipation
        fields = [
            "id",
            "challenge",
            "challenge_title",
            "team",
            "accepted_terms_by",
            "accepted_terms_at",
        ]
        read_only_fields = fields


class ParticipationErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


# Views


class ParticipationView(APIView):
    """Signed-in users only; a broken team or participation rule answers 400 with the reason."""

    permission_classes = [permissions.IsAuthenticated]


ERRORS = {
    400: OpenApiResponse(
        ParticipationErrorSerializer, description="A rule was broken; `detail` says which"
    ),
    403: OpenApiResponse(ParticipationErrorSerializer, description="You may not do this"),
}


class TeamListCreate(ParticipationView):
    @extend_schema(responses=TeamSerializer(many=True))
    def get(self, request):
        """Your participant teams, with their invitation codes and members."""
        return Response(TeamSerializer(teams_of_user(request.user), many=True).data)

    @extend_schema(request=TeamCreateInput, responses={201: TeamSerializer, 400: ERRORS[400]})
    def post(self, request):
        """Create a team; you become its first member."""
        params = TeamCreateInput(data=request.data)
        params.is_valid(raise_exception=True)
        team = participant_team_create(name=params.validated_data["name"], creator=request.user)
        return Response(
            TeamSerializer(teams_of_user(request.user).get(pk=team.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class TeamJoin(ParticipationView):
    @extend_schema(request=TeamJoinInput, responses={200: TeamSerializer, 400: ERRORS[400]})
    def post(self, request):
        """Join a team with its invitation code (ask a member for it)."""
        params = TeamJoinInput(data=request.data)
        params.is_valid(raise_exception=True)
        team = participant_team_join(
            user=request.user, invitation_code=params.validated_data["invitation_code"]
        )
        return Response(TeamSerializer(teams_of_user(request.user).get(pk=team.pk)).data)


class TeamRotateCode(ParticipationView):
    @extend_schema(request=None, responses={200: TeamSerializer, 403: ERRORS[403]})
    def post(self, request, team_id: int):
        """Give the team a new invitation code; the old one stops working."""
        team = ParticipantTeam.objects.get(pk=team_id)
        participant_team_rotate_code(team=team, user=request.user)
        return Response(TeamSerializer(teams_of_user(request.user).get(pk=team.pk)).data)


class TeamLeave(ParticipationView):
    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="You left the team"), **ERRORS},
    )
    def post(self, request, team_id: int):
        """Leave a team (not while it takes part in a challenge that has not ended)."""
        team = ParticipantTeam.objects.get(pk=team_id)
        participant_team_leave(team=team, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChallengeParticipate(ParticipationView):
    @extend_schema(
        request=ParticipateInput,
        responses={
            201: ParticipationSerializer,
            200: OpenApiResponse(
                ParticipationSerializer, description="The team already takes part"
            ),
            **ERRORS,
        },
    )
    def post(self, request, challenge_id: int):
        """Enter one of your teams in a challenge, accepting its terms and conditions."""
        challenge = access_challenge(request.user, challenge_id)
        params = ParticipateInput(data=request.data)
        params.is_valid(raise_exception=True)
        team = ParticipantTeam.objects.filter(pk=params.validated_data["team"]).first()
        if team is None:
            raise ValidationError(
                {
                    "detail": _(
                        "There is no participant team with id %(team)s. Your teams are listed at GET /api/v1/teams/."
                    )
                    % {"team": params.validated_data["team"]}
                }
            )
        # Only to choose 201 or 200; the service decides, under a lock, what happens.
        existed = ChallengeParticipation.objects.filter(challenge=challenge, team=team).exists()
        participation = challenge_participate(
            challenge=challenge,
            team=team,
            user=request.user,
            accept_terms=params.validated_data["accept_terms"],
        )
        return Response(
            ParticipationSerializer(participation).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class ChallengeParticipationDetail(ParticipationView):
    @extend_schema(
        responses={
            200: ParticipationSerializer,
            404: OpenApiResponse(
                ParticipationErrorSerializer, description="None of your teams takes part"
            ),
        }
    )
    def get(self, request, challenge_id: int):
        """Your team's participation in the challenge; 404 if none of your teams takes part."""
        challenge = access_challenge(request.user, challenge_id)
        participation = participation_for_user(request.user, challenge)
        if participation is None:
            raise ChallengeParticipation.DoesNotExist
        return Response(ParticipationSerializer(participation).data)


urlpatterns = [
    path("teams/", TeamListCreate.as_view(), name="api-teams"),
    path("teams/join/", TeamJoin.as_view(), name="api-team-join"),
    path("teams/<id:team_id>/rotate-code/", TeamRotateCode.as_view(), name="api-team-rotate-code"),
    path("teams/<id:team_id>/leave/", TeamLeave.as_view(), name="api-team-leave"),
    path(
        "challenges/<id:challenge_id>/participate/",
        ChallengeParticipate.as_view(),
        name="api-challenge-participate",
    ),
    path(
        "challenges/<id:challenge_id>/participation/",
        ChallengeParticipationDetail.as_view(),
        name="api-challenge-participation",
    ),
]

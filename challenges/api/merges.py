"""REST API: Kaggle's team merges in a challenge (request, accept, decline, withdraw).
The rules and their refusals are `challenges.services.merges`'; who sees a merge is
`challenges.access.access_team_merge`'s."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:>)
from challenges.access import access_challenge, access_team_merge, user_is_challenge_host
from challenges.api.participation import ERRORS
from challenges.models import ParticipantTeam, TeamMerge
from challenges.selectors import participation_for_user, team_merges_of
from challenges.services.merges import (
    team_merge_accept,
    team_merge_decline,
    team_merge_request,
    team_merge_withdraw,
)


class MergeRequestInput(serializers.Serializer):
    team = serializers.IntegerField(help_text="Id of the team you ask to merge with yours")


class TeamMergeSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(read_only=True, slug_field="username")
    decided_by = serializers.SlugRelatedField(read_only=True, slug_field="username")

    class Meta:
        model = TeamMerge
        fields = [
            "id",
            "challenge",
            "requesting_team",
            "requesting_team_name",
            "receiving_team",
            "receiving_team_name",
            "status",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "members_moved",
            "submissions_moved",
        ]
        read_only_fields = fields


class ChallengeMerges(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=TeamMergeSerializer(many=True))
    def get(self, request, challenge_id: int):
        """Merge requests your team sent or received in the challenge (hosts: all of them)."""
        challenge = access_challenge(request.user, challenge_id)
        if user_is_challenge_host(request.user, challenge):
            merges = team_merges_of(challenge)
        else:
            participation = participation_for_user(request.user, challenge)
            merges = (
                team_merges_of(challenge, participation.team_id)
                if participation
                else TeamMerge.objects.none()
            )
        return Response(TeamMergeSerializer(merges, many=True).data)

    @extend_schema(request=MergeRequestInput, responses={201: TeamMergeSerializer, **ERRORS})
    def post(self, request, challenge_id: int):
        """Your team's leader asks another team taking part to merge; its leader accepts.
        400 gives the numbers when the merge would break a rule (size, submissions, the
        merger deadline)."""
        challenge = access_challenge(request.user, challenge_id)
        params = MergeRequestInput(data=request.data)
        params.is_valid(raise_exception=True)
        participation = participation_for_user(request.user, challenge)
        if participation is None:
            raise ValidationError(
                {
                    "detail": _(
                        "Your team does not take part in this challenge; only teams taking "
                        "part can merge."
                    )
                }
            )
        receiving = ParticipantTeam.objects.filter(pk=params.validated_data["team"]).first()
        if receiving is None:
            raise ValidationError(
                {
                    "detail": _("There is no team with id %(id)s.")
                    % {"id": params.validated_data["team"]}
                }
            )
        merge = team_merge_request(
            challenge=challenge,
            requesting_team=participation.team,
            receiving_team=receiving,
            user=request.user,
        )
        return Response(TeamMergeSerializer(merge).data, status=status.HTTP_201_CREATED)


def _decision(service, doc: str):
    class Decision(APIView):
        permission_classes = [permissions.IsAuthenticated]

        @extend_schema(request=None, responses={200: TeamMergeSerializer, **ERRORS}, summary=doc)
        def post(self, request, merge_id: int):
            merge = access_team_merge(request.user, merge_id)
            return Response(TeamMergeSerializer(service(merge=merge, user=request.user)).data)

    Decision.__name__ = Decision.__qualname__ = f"TeamMerge{service.__name__.title()}"
    Decision.post.__doc__ = doc
    return Decision


TeamMergeAccept = _decision(
    team_merge_accept, "The receiving team's leader accepts: the teams merge into it."
)
TeamMergeDecline = _decision(team_merge_decline, "The receiving team's leader declines.")
TeamMergeWithdraw = _decision(
    team_merge_withdraw, "A member of the requesting team withdraws the request."
)

urlpatterns = [
    path("challenges/<id:challenge_id>/merges/", ChallengeMerges.as_view(), name="api-team-merges"),
    path("merges/<id:merge_id>/accept/", TeamMergeAccept.as_view(), name="api-merge-accept"),
    path("merges/<id:merge_id>/decline/", TeamMergeDecline.as_view(), name="api-merge-decline"),
    path("merges/<id:merge_id>/withdraw/", TeamMergeWithdraw.as_view(), name="api-merge-withdraw"),
]

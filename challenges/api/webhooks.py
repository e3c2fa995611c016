"""REST API: a team's round webhooks (register, test, delivery log) and a phase's rounds."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:> and <codename:>)
from challenges.access import access_challenge, access_phase, require_participation
from challenges.models import ParticipantTeamMember, Round, Webhook, WebhookDelivery
from challenges.selectors import participation_for_user
from challenges.services.webhooks import (
    round_start,
    webhook_create,
    webhook_delete,
    webhook_send_test,
)


def access_webhook(user, webhook_id: int) -> Webhook:
    """A webhook of one of the user's teams; DoesNotExist otherwise (no existence leak)."""
    teams = ParticipantTeamMember.objects.filter(user=user).values("team_id")
    return Webhook.objects.select_related("team", "challenge").get(pk=webhook_id, team_id__in=teams)


class WebhookIn(serializers.Serializer):
    url = serializers.URLField(max_length=1000)


class WebhookOut(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name")

    class Meta:
        model = Webhook
        fields = ["id", "url", "team", "challenge", "secret", "is_active", "created_at"]


class DeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "trigger_id",
            "payload",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "log",
            "created_at",
            "delivered_at",
        ]


class RoundIn(serializers.Serializer):
    data_version = serializers.CharField(max_length=100, required=False, default="")


class RoundOut(serializers.ModelSerializer):
    class Meta:
        model = Round
        fields = ["number", "data_version", "opened_at"]


class ChallengeWebhooks(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=WebhookOut(many=True))
    def get(self, request, challenge_id: int):
        """Your team's webhooks for this challenge (with the secrets that sign deliveries)."""
        challenge = access_challenge(request.user, challenge_id)
        participation = participation_for_user(request.user, challenge)
        if participation is None:
            return Response([])
        hooks = Webhook.objects.filter(challenge=challenge, team_id=participation.team_id)
        return Response(WebhookOut(hooks.select_related("team"), many=True).data)

    @extend_schema(request=WebhookIn, responses={201: WebhookOut})
    def post(self, request, challenge_id: int):
        """Register a URL: it gets a signed POST whenever one of the challenge's rounds opens."""
        challenge = access_challenge(request.user, challenge_id)
        participation = participation_for_user(request.user, challenge)
        require_participation(participation)
        params = WebhookIn(data=request.data)
        params.is_valid(raise_exception=True)
        hook = webhook_create(
            user=request.user,
            team=participation.team,
            challenge=challenge,
            url=params.validated_data["url"],
        )
        return Response(WebhookOut(hook).data, status=status.HTTP_201_CREATED)


class WebhookDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request, webhook_id: int):
        webhook_delete(user=request.user, webhook=access_webhook(request.user, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTest(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={202: DeliveryOut})
    def post(self, request, webhook_id: int):
        """Send a test delivery (isTest: true) now."""
        delivery = webhook_send_test(
            user=request.user, webhook=access_webhook(request.user, webhook_id)
        )
        return Response(DeliveryOut(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveries(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=DeliveryOut(many=True))
    def get(self, request, webhook_id: int):
        """The latest 50 deliveries, newest first, each with every attempt's outcome."""
        webhook = access_webhook(request.user, webhook_id)
        return Response(DeliveryOut(webhook.deliveries.all()[:50], many=True).data)


class PhaseRounds(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses=RoundOut(many=True))
    def get(self, request, challenge_id: int, codename: str):
        """The phase's rounds, first to latest."""
        phase = access_phase(request.user, challenge_id, codename=codename)
        return Response(RoundOut(phase.rounds.all(), many=True).data)

    @extend_schema(request=RoundIn, responses={201: RoundOut})
    def post(self, request, challenge_id: int, codename: str):
        """Hosts: open the next round; every participating team's webhooks are told."""
        phase = access_phase(request.user, challenge_id, codename=codename)
        params = RoundIn(data=request.data)
        params.is_valid(raise_exception=True)
        opened = round_start(
            user=request.user, phase=phase, data_version=params.validated_data["data_version"]
        )
        return Response(RoundOut(opened).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path(
        "challenges/<id:challenge_id>/webhooks/",
        ChallengeWebhooks.as_view(),
        name="api-challenge-webhooks",
    ),
    path("webhooks/<id:webhook_id>/", WebhookDetail.as_view(), name="api-webhook"),
    path("webhooks/<id:webhook_id>/test/", WebhookTest.as_view(), name="api-webhook-test"),
    path(
        "webhooks/<id:webhook_id>/deliveries/",
        WebhookDeliveries.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/rounds/",
        PhaseRounds.as_view(),
        name="api-phase-rounds",
    ),
]

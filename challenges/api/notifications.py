"""REST API: one's own notifications and preferences, and a challenge's chat hooks
(hosts)."""

from __future__ import annotations

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:>)
from challenges.access import (
    AccessDenied,
    access_challenge_as_host,
)
from challenges.models import Challenge, ChatHook, Notification
from challenges.models.notifications import Channel, Kind
from challenges.notifications.hooks import chat_hook_create, chat_hook_delete
from challenges.notifications.preferences import preference_set, preferences_of
from challenges.throttles import PerUser, throttle


class NotificationOut(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "challenge", "title", "url", "created_at", "read_at"]


class ReadIn(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=500
    )


class PreferenceRow(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices)
    channel = serializers.ChoiceField(choices=Channel.choices)
    enabled = serializers.BooleanField()


class PreferencesIn(serializers.Serializer):
    preferences = PreferenceRow(many=True)


class ChatHookIn(serializers.Serializer):
    flavour = serializers.ChoiceField(choices=ChatHook.Flavour.choices)
    url = serializers.URLField(max_length=1000)
    events = serializers.ListField(child=serializers.ChoiceField(choices=Kind.choices))


class ChatHookOut(serializers.ModelSerializer):
    class Meta:
        model = ChatHook
        fields = ["id", "challenge", "flavour", "url", "events", "created_at"]


class Notifications(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=NotificationOut(many=True))
    def get(self, request):
        """Your notifications, newest first (paginated); `unread` counts the unread ones."""
        rows = Notification.objects.filter(user=request.user)
        pages = LimitOffsetPagination()
        page = pages.paginate_queryset(rows, request, view=self)
        response = pages.get_paginated_response(NotificationOut(page, many=True).data)
        response.data["unread"] = rows.filter(read_at__isnull=True).count()
        return response


class NotificationsRead(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=ReadIn, responses={200: OpenApiResponse(description="{marked}")})
    def post(self, request):
        """Mark notifications read: those in `ids`, or all of them."""
        params = ReadIn(data=request.data)
        params.is_valid(raise_exception=True)
        rows = Notification.objects.filter(user=request.user, read_at__isnull=True)
        if "ids" in params.validated_data:
            rows = rows.filter(pk__in=params.validated_data["ids"])
        return Response({"marked": rows.update(read_at=timezone.now())})


class NotificationPreferences(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=PreferenceRow(many=True))
    def get(self, request):
        """Every kind on every channel, on or off (defaults filled in)."""
        prefs = preferences_of(request.user)
        return Response([{"kind": k, "channel": c, "enabled": on} for (k, c), on in prefs.items()])

    @extend_schema(request=PreferencesIn, responses=PreferenceRow(many=True))
    def put(self, request):
        """Change some of them; the others keep their value."""
        params = PreferencesIn(data=request.data)
        params.is_valid(raise_exception=True)
        for row in params.validated_data["preferences"]:
            preference_set(user=request.user, **row)
        return self.get(request)


class ChallengeChatHooks(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get_throttles(self):
        if self.request.method in permissions.SAFE_METHODS:
            return []
        return [throttle("forum_user", PerUser)()]

    @extend_schema(responses=ChatHookOut(many=True))
    def get(self, request, challenge_id: int):
        """Hosts: the challenge's chat webhooks and the events each hears of."""
        challenge = access_challenge_as_host(request.user, challenge_id)
        return Response(ChatHookOut(challenge.chat_hooks.order_by("pk"), many=True).data)

    @extend_schema(request=ChatHookIn, responses={201: ChatHookOut})
    def post(self, request, challenge_id: int):
        """Hosts: add a Slack, Mattermost or Microsoft Teams incoming webhook."""
        challenge = access_challenge_as_host(request.user, challenge_id)
        params = ChatHookIn(data=request.data)
        params.is_valid(raise_exception=True)
        hook = chat_hook_create(user=request.user, challenge=challenge, **params.validated_data)
        return Response(ChatHookOut(hook).data, status=status.HTTP_201_CREATED)


class ChatHookDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request, hook_id: int):
        hook = ChatHook.objects.select_related("challenge").get(pk=hook_id)
        try:
            access_challenge_as_host(request.user, hook.challenge_id)
        except (Challenge.DoesNotExist, AccessDenied):
            raise ChatHook.DoesNotExist from None  # no existence leak
        chat_hook_delete(user=request.user, hook=hook)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("notifications/", Notifications.as_view(), name="api-notifications"),
    path("notifications/read/", NotificationsRead.as_view(), name="api-notifications-read"),
    path(
        "notifications/preferences/",
        NotificationPreferences.as_view(),
        name="api-notification-preferences",
    ),
    path(
        "challenges/<id:challenge_id>/chat-hooks/",
        ChallengeChatHooks.as_view(),
        name="api-chat-hooks",
    ),
    path("chat-hooks/<id:hook_id>/", ChatHookDetail.as_view(), name="api-chat-hook"),
]

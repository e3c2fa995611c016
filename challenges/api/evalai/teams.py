"""EvalAI's apps/participants and apps/hosts routes: participant teams (list, create,
invite, their challenges) and host teams (list, create)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers, status
from rest_framework.response import Response

from challenges.access import require_team_member, user_is_team_member
from challenges.api.evalai import shapes
from challenges.api.evalai.base import EvalAIView, paginated
from challenges.api.evalai.challenges import challenge_shape
from challenges.models import Challenge, HostTeam, ParticipantTeam
from challenges.selectors import teams_of_user
from challenges.services.participation import (
    ParticipationError,
    participant_team_create,
    participant_team_join,
)
from challenges.services.teams import host_team_create
from challenges.text_checks import NoBidiControls
from challenges.throttles import PerUser, throttle


class TeamInput(serializers.Serializer):
    team_name = serializers.CharField(
        max_length=200, validators=[NoBidiControls(gettext_lazy("Team name"))]
    )
    team_url = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class InviteInput(serializers.Serializer):
    email = serializers.EmailField()


class ParticipantTeams(EvalAIView):
    def get(self, request):
        return paginated(self, teams_of_user(request.user), shapes.participant_team)

    def post(self, request):
        params = TeamInput(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            team = participant_team_create(
                name=params.validated_data["team_name"], creator=request.user
            )
        except ParticipationError as exc:
            # Where EvalAI's CLI looks for a team-name problem.
            return Response(
                {"team_name": [str(exc)], "error": str(exc)}, status=status.HTTP_400_BAD_REQUEST
            )
        team = teams_of_user(request.user).get(pk=team.pk)
        return Response(shapes.participant_team(team), status=status.HTTP_201_CREATED)


INVITED = gettext_lazy(
    "If a user has this email address, they have been sent the team's invitation code; "
    "they join the team when they use it."
)


class ParticipantTeamInvite(EvalAIView):
    """EvalAI adds a registered user to the team by email. Here, by default, the user is
    sent the team's invitation code and joins by using it: nobody is put in a team
    without saying yes (a team's submissions and quotas are theirs too), and the answer
    is the same whether or not the address has an account, so it cannot be used to find
    out who has one. EVALAI_INVITE_ADDS_MEMBERS restores EvalAI's way for sites that want
    it; either way the join follows the rules of any join by invitation code."""

    def get_throttles(self):
        return [throttle("invite_user", PerUser)()]

    def post(self, request, team_pk: int):
        team = teams_of_user(request.user).get(pk=team_pk)
        params = InviteInput(data=request.data)
        params.is_valid(raise_exception=True)
        email = params.validated_data["email"]
        invitee = (
            get_user_model()
            .objects.filter(email__iexact=email, is_active=True)
            .order_by("pk")
            .first()
        )
        if settings.EVALAI_INVITE_ADDS_MEMBERS:
            if invitee is None:
                return Response(
                    {"error": _("User does not exist with this email address!")},
                    status=status.HTTP_406_NOT_ACCEPTABLE,
                )
            participant_team_join(user=invitee, invitation_code=team.invitation_code)
            return Response(
                {"message": _("User has been successfully added to the team!")},
                status=status.HTTP_202_ACCEPTED,
            )
        if invitee is not None and not user_is_team_member(invitee, team):
            teams = request.build_absolute_uri(reverse("teams"))
            # In the invitee's language (their profile's), not the inviter's.
            profile = getattr(invitee, "profile", None)
            with translation.override(getattr(profile, "language", "") or None):
                values = {
                    "user": request.user.username,
                    "team": team.name,
                    "url": teams,
                    "code": team.invitation_code,
                }
                send_mail(
                    _("An invitation to the team %(team)s") % values,
                    _(
                        "%(user)s invites you to their team %(team)s on evalserver. To join it, "
                        "sign in, open %(url)s and enter the invitation code %(code)s (or run "
                        "`evalserver-cli` / use the API with it). If you do not want to join, "
                        "there is nothing to do."
                    )
                    % values,
                    settings.DEFAULT_FROM_EMAIL,
                    [invitee.email],
                    fail_silently=True,
                )
        return Response({"message": INVITED}, status=status.HTTP_202_ACCEPTED)


class ParticipantTeamChallenges(EvalAIView):
    def get(self, request, team_pk: int):
        team = ParticipantTeam.objects.get(pk=team_pk)
        require_team_member(request.user, team)
        qs = (
            Challenge.objects.filter(participations__team=team)
            .select_related("host_team__created_by")
            .order_by("-pk")
        )
        return paginated(self, qs, lambda c: challenge_shape(request.user, c))


class HostTeams(EvalAIView):
    def get(self, request):
        qs = (
            HostTeam.objects.filter(memberships__user=request.user)
            .select_related("created_by")
            .prefetch_related("memberships__user")
            .order_by("name")
        )
        return paginated(self, qs, shapes.host_team)


class HostTeamCreate(EvalAIView):
    def post(self, request):
        params = TeamInput(data=request.data)
        params.is_valid(raise_exception=True)
        name = params.validated_data["team_name"].strip()
        try:
            team = host_team_create(name=name, creator=request.user)
        except IntegrityError:
            message = f"A host team named {name!r} exists; choose another name."
            return Response(
                {"team_name": [message], "error": message}, status=status.HTTP_400_BAD_REQUEST
            )
        team = HostTeam.objects.prefetch_related("memberships__user").get(pk=team.pk)
        return Response(shapes.host_team(team), status=status.HTTP_201_CREATED)

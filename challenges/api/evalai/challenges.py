"""EvalAI's apps/challenges routes: challenge lists and details, phases, phase splits,
taking part, and a host team's challenges."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import permissions, status
from rest_framework.response import Response

from challenges.access import (
    access_challenge,
    access_phase,
    challenges_visible_to,
    phases_visible_to,
    require_host_team_member,
    user_is_challenge_host,
)
from challenges.api.evalai import shapes
from challenges.api.evalai.base import EvalAIView, paginated
from challenges.leaderboard_access import splits_listed_to
from challenges.models import (
    ChallengeParticipation,
    ChallengePhase,
    ChallengePhaseSplit,
    HostTeam,
    ParticipantTeam,
)
from challenges.services.participation import challenge_participate
from challenges.services.remote_evaluation import queue_name

TIMES = {"all", "present", "past", "future"}


def challenge_shape(user, challenge) -> dict:
    # The queue name is for the hosts' remote worker only.
    shown = challenge.remote_evaluation and user_is_challenge_host(user, challenge)
    return shapes.challenge(challenge, queue=queue_name(challenge) if shown else None)


class ChallengeList(EvalAIView):
    """`challenge/<time>/<approved>/<published>`: time is all, present, past or future;
    `approved` and `public` narrow to approved and published challenges."""

    permission_classes = [permissions.AllowAny]

    def get(self, request, time: str, approved: str = "all", published: str = "all"):
        time, now = time.lower(), timezone.now()
        if time not in TIMES:
            return Response(
                {
                    "error": _("%(time)s is not one of: all, present, past, future.")
                    % {"time": repr(time)}
                },
                status=status.HTTP_406_NOT_ACCEPTABLE,
            )
        qs = challenges_visible_to(request.user).select_related("host_team__created_by")
        if time == "past":
            qs = qs.filter(end_date__lt=now)
        elif time == "future":
            qs = qs.filter(start_date__gt=now)
        elif time == "present":
            qs = qs.filter(Q(start_date__isnull=True) | Q(start_date__lte=now), end_date__gt=now)
        if approved.lower() == "approved":
            qs = qs.filter(approved_by_admin=True)
        if published.lower() == "public":
            qs = qs.filter(published=True)
        return paginated(self, qs.order_by("-pk"), lambda c: challenge_shape(request.user, c))


class ChallengeDetail(EvalAIView):
    permission_classes = [permissions.AllowAny]

    def get(self, request, challenge_pk: int):
        return Response(challenge_shape(request.user, access_challenge(request.user, challenge_pk)))


class PhaseList(EvalAIView):
    permission_classes = [permissions.AllowAny]

    def get(self, request, challenge_pk: int):
        challenge = access_challenge(request.user, challenge_pk)
        is_host = user_is_challenge_host(request.user, challenge)
        phases = phases_visible_to(request.user, challenge).order_by("bundle_id", "pk")
        return paginated(self, phases, lambda p: shapes.phase(p, is_host=is_host))


class PhaseDetail(EvalAIView):
    permission_classes = [permissions.AllowAny]

    def get(self, request, challenge_pk: int, pk: int):
        phase = access_phase(request.user, challenge_pk, phase_id=pk)
        is_host = user_is_challenge_host(request.user, phase.challenge)
        return Response(shapes.phase(phase, is_host=is_host))


class PhaseByPk(EvalAIView):
    """`challenge/phase/<pk>/`: what EvalAI's remote worker asks for the phase's codename."""

    permission_classes = [permissions.AllowAny]

    def get(self, request, pk: int):
        challenge_id = ChallengePhase.objects.values_list("challenge_id", flat=True).get(pk=pk)
        phase = access_phase(request.user, challenge_id, phase_id=pk)
        is_host = user_is_challenge_host(request.user, phase.challenge)
        return Response(shapes.phase(phase, is_host=is_host))


class PhaseSplitList(EvalAIView):
    """Every phase split of a challenge the reader may know of (not paginated, as in EvalAI)."""

    permission_classes = [permissions.AllowAny]

    def get(self, request, challenge_pk: int):
        challenge = access_challenge(request.user, challenge_pk)
        is_host = user_is_challenge_host(request.user, challenge)
        phases = phases_visible_to(request.user, challenge)
        splits = (
            ChallengePhaseSplit.objects.filter(phase__in=phases)
            .select_related("phase", "dataset_split")
            .order_by("phase__bundle_id", "dataset_split__bundle_id", "pk")
        )
        return Response([shapes.phase_split(ps) for ps in splits_listed_to(is_host, splits)])


class Participate(EvalAIView):
    """`challenge/<c>/participant_team/<t>`: the CLI asks the user to accept the terms
    before it calls this, so the call itself accepts them."""

    def post(self, request, challenge_pk: int, team_pk: int):
        challenge = access_challenge(request.user, challenge_pk)
        team = ParticipantTeam.objects.get(pk=team_pk)
        if ChallengeParticipation.objects.filter(challenge=challenge, team=team).exists():
            return Response({"error": _("Team already exists")}, status=status.HTTP_400_BAD_REQUEST)
        challenge_participate(challenge=challenge, team=team, user=request.user, accept_terms=True)
        return Response(challenge_shape(request.user, challenge), status=status.HTTP_201_CREATED)


class HostTeamChallenges(EvalAIView):
    def get(self, request, team_pk: int):
        team = HostTeam.objects.get(pk=team_pk)
        require_host_team_member(request.user, team)
        qs = team.challenges.select_related("host_team__created_by").order_by("-pk")
        return paginated(self, qs, lambda c: challenge_shape(request.user, c))

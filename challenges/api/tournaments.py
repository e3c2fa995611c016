"""REST API of live tournaments: rounds (open with live features, current round, live
data, targets), teams' models, bots' round submissions, and leaderboards per round and
cumulative (JSON and CSV, the same numbers)."""

from __future__ import annotations

from django.http import FileResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:> and <codename:>)
from challenges.api.errors import exception_handler
from challenges.attachments import rows_csv_response
from challenges.failure_text import participant_failure_text
from challenges.models import Round, RoundSubmission, TournamentModel
from challenges.selectors import participation_for_user
from challenges.services.storage import open_stored
from challenges.throttles import submit_throttles
from challenges.tournaments import (
    RoundClosed,
    round_current,
    round_open,
    round_submission_create,
    round_targets_upload,
    team_round_submissions,
    tournament_model_mark_current,
    tournament_model_upload,
)
from challenges.tournaments.access import access_round, access_team_model, access_tournament
from challenges.tournaments.metrics import METRICS
from challenges.tournaments.round_leaderboards import cumulative_leaderboard, round_leaderboard

_BASE = "challenges/<id:challenge_id>/phases/<codename:codename>/tournament/"


class TournamentRoundOut(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    live_features_url = serializers.SerializerMethodField()

    class Meta:
        model = Round
        fields = [
            "number",
            "data_version",
            "opened_at",
            "closes_at",
            "status",
            "targets_version",
            "resolved_at",
            "live_features_url",
        ]

    def get_status(self, obj: Round) -> str:
        from django.utils import timezone

        if obj.targets_version:
            return "resolved"
        return "open" if obj.closes_at and obj.closes_at > timezone.now() else "closed"

    def get_live_features_url(self, obj: Round) -> str:
        url = reverse(
            "api-tournament-live",
            kwargs={
                "challenge_id": obj.phase.challenge_id,
                "codename": obj.phase.codename,
                "number": obj.number,
            },
        )
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class RoundOpenIn(serializers.Serializer):
    live_features = serializers.FileField()
    data_version = serializers.CharField(max_length=100, required=False, default="")
    closes_at = serializers.DateTimeField(required=False, default=None)


class TournamentFileIn(serializers.Serializer):
    file = serializers.FileField()


class TournamentModelIn(serializers.Serializer):
    file = serializers.FileField()
    current = serializers.BooleanField(required=False, default=False)
    # The Python version the model was pickled with; default: the newest offered.
    python_version = serializers.CharField(required=False, allow_blank=True, max_length=20)


class TournamentModelOut(serializers.ModelSerializer):
    class Meta:
        model = TournamentModel
        fields = [
            "id",
            "file_name",
            "sha256",
            "size",
            "uploaded_at",
            "is_current",
            "python_version",
            "status",
            "failure_cause",
            "failure_message",
            "status_changed_at",
        ]


class RoundSubmissionOut(serializers.ModelSerializer):
    round = serializers.IntegerField(source="round.number")
    scores = serializers.SerializerMethodField()
    # The team reads the summary written for it (challenges.failure_text), as everywhere.
    failure_message = serializers.SerializerMethodField()

    class Meta:
        model = RoundSubmission
        fields = [
            "id",
            "round",
            "source",
            "status",
            "submitted_at",
            "rows",
            "failure_kind",
            "failure_message",
            "scores",
            "scored_at",
        ]

    def get_failure_message(self, obj: RoundSubmission) -> str:
        return participant_failure_text(obj.failure_message)

    def get_scores(self, obj: RoundSubmission) -> dict | None:
        if not obj.scores:
            return None
        return {m: obj.scores.get(m) for m in METRICS}


class TournamentRounds(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=TournamentRoundOut(many=True))
    def get(self, request, challenge_id: int, codename: str):
        """The tournament's rounds, latest first."""
        phase, _t = access_tournament(request.user, challenge_id, codename)
        rounds = phase.rounds.select_related("phase").order_by("-number")
        return Response(TournamentRoundOut(rounds, many=True, context={"request": request}).data)

    @extend_schema(request=RoundOpenIn, responses={201: TournamentRoundOut})
    def post(self, request, challenge_id: int, codename: str):
        """Hosts: open the next round with its live features; every team's model runs on
        them and every team's webhooks are told."""
        phase, _t = access_tournament(request.user, challenge_id, codename)
        params = RoundOpenIn(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        opened = round_open(
            user=request.user,
            phase=phase,
            live_features=data["live_features"],
            data_version=data["data_version"],
            closes_at=data["closes_at"],
        )
        return Response(
            TournamentRoundOut(opened, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class CurrentRound(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses={200: TournamentRoundOut, 404: OpenApiResponse(description="no open round")}
    )
    def get(self, request, challenge_id: int, codename: str):
        """The open round: its number, data version, close time and live-data download."""
        phase, _t = access_tournament(request.user, challenge_id, codename)
        opened = round_current(phase=phase)
        if opened is None:
            return Response({"detail": _("No round is open.")}, status=status.HTTP_404_NOT_FOUND)
        return Response(TournamentRoundOut(opened, context={"request": request}).data)


class RoundLive(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: OpenApiResponse(description="text/csv")})
    def get(self, request, challenge_id: int, codename: str, number: int):
        """The round's live features (public; only models never see the targets)."""
        opened = access_round(request.user, challenge_id, codename, number)
        if not opened.live_features:
            return Response({"detail": _("Not found.")}, status=status.HTTP_404_NOT_FOUND)
        return FileResponse(
            open_stored(opened.live_features.name),
            as_attachment=True,
            filename=f"round-{opened.number}-live_features.csv",
            content_type="text/csv",
        )


class RoundTargets(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request=TournamentFileIn, responses={202: OpenApiResponse(description="{scoring: n}")}
    )
    def post(self, request, challenge_id: int, codename: str, number: int):
        """Hosts: the round's targets (again): every valid submission is (re-)scored."""
        opened = access_round(request.user, challenge_id, codename, number)
        params = TournamentFileIn(data=request.data)
        params.is_valid(raise_exception=True)
        count = round_targets_upload(
            user=request.user, round=opened, targets=params.validated_data["file"]
        )
        return Response({"scoring": count}, status=status.HTTP_202_ACCEPTED)


class RoundSubmissions(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    def get_throttles(self):
        # Files cost disk and worker time: the submit rate of every upload route.
        return [t() for t in submit_throttles()] if self.request.method == "POST" else []

    @extend_schema(responses=RoundSubmissionOut(many=True))
    def get(self, request, challenge_id: int, codename: str, number: int):
        """Your team's submissions to the round: model runs (with failures) and uploads."""
        opened = access_round(request.user, challenge_id, codename, number)
        participation = participation_for_user(request.user, opened.phase.challenge)
        if participation is None:
            return Response([])
        subs = team_round_submissions(phase=opened.phase, team=participation.team).filter(
            round=opened
        )
        return Response(RoundSubmissionOut(subs, many=True).data)

    @extend_schema(
        request=TournamentFileIn,
        responses={201: RoundSubmissionOut, 409: OpenApiResponse(description="round closed")},
    )
    def post(self, request, challenge_id: int, codename: str, number: int):
        """Bots: predictions (CSV id,prediction) for the round; checked at once, refused
        with 409 and the close time once the round has closed. The last one counts."""
        opened = access_round(request.user, challenge_id, codename, number)
        params = TournamentFileIn(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            sub = round_submission_create(
                user=request.user,
                round=opened,
                participation=participation_for_user(request.user, opened.phase.challenge),
                upload=params.validated_data["file"],
            )
        except RoundClosed as exc:
            response = exception_handler(exc, {})
            response.data["closes_at"] = exc.closes_at.isoformat()
            return response
        return Response(RoundSubmissionOut(sub).data, status=status.HTTP_201_CREATED)


class TeamModels(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    def get_throttles(self):
        # Files cost disk and worker time: the submit rate of every upload route.
        return [t() for t in submit_throttles()] if self.request.method == "POST" else []

    @extend_schema(responses=TournamentModelOut(many=True))
    def get(self, request, challenge_id: int, codename: str):
        """Your team's models in this tournament, newest first."""
        phase, _t = access_tournament(request.user, challenge_id, codename)
        participation = participation_for_user(request.user, phase.challenge)
        if participation is None:
            return Response([])
        models = TournamentModel.objects.filter(phase=phase, team_id=participation.team_id)
        return Response(TournamentModelOut(models, many=True).data)

    @extend_schema(request=TournamentModelIn, responses={201: TournamentModelOut})
    def post(self, request, challenge_id: int, codename: str):
        """Upload a pickled model (`python_version`: the Python it was pickled with); it runs
        at once on the open round and the validation data, and on every round from the next
        one on (`current` marks it as the one to run even when newer uploads follow)."""
        phase, _t = access_tournament(request.user, challenge_id, codename)
        params = TournamentModelIn(data=request.data)
        params.is_valid(raise_exception=True)
        model = tournament_model_upload(
            user=request.user,
            phase=phase,
            participation=participation_for_user(request.user, phase.challenge),
            upload=params.validated_data["file"],
            make_current=params.validated_data["current"],
            python_version=params.validated_data.get("python_version"),
        )
        return Response(TournamentModelOut(model).data, status=status.HTTP_201_CREATED)


class ModelCurrent(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=TournamentModelOut)
    def post(self, request, model_id: int):
        """Mark this model as the one that runs on the next rounds."""
        model = tournament_model_mark_current(
            user=request.user, model=access_team_model(request.user, model_id)
        )
        return Response(TournamentModelOut(model).data)


class RoundLeaderboard(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: OpenApiResponse(description="rows (or text/csv)")})
    def get(self, request, challenge_id: int, codename: str, number: int, as_csv: bool = False):
        """A round's leaderboard: scored rows ranked, pending ones (no targets yet) after.
        `leaderboard.csv`: the same rows as CSV."""
        phase, tournament = access_tournament(request.user, challenge_id, codename)
        opened = Round.objects.select_related("phase").get(phase=phase, number=number)
        rows = [r.as_dict() for r in round_leaderboard(opened=opened, tournament=tournament)]
        if as_csv:
            columns = ["rank", "team", "source", "status", *METRICS]
            return rows_csv_response(request, rows, columns, f"round-{number}-{codename}.csv")
        return Response(
            {"round": number, "rank_by": tournament.rank_by, "rows": rows},
        )


class CumulativeLeaderboard(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: OpenApiResponse(description="rows (or text/csv)")})
    def get(self, request, challenge_id: int, codename: str, as_csv: bool = False):
        """Mean over the last N resolved rounds (N: the phase's cumulative_rounds).
        `leaderboard.csv`: the same rows as CSV."""
        phase, tournament = access_tournament(request.user, challenge_id, codename)
        rounds, rows = cumulative_leaderboard(phase=phase, tournament=tournament)
        data = [r.as_dict() for r in rows]
        if as_csv:
            columns = ["rank", "team", "rounds", *METRICS]
            return rows_csv_response(request, data, columns, f"tournament-{codename}.csv")
        return Response(
            {
                "rank_by": tournament.rank_by,
                "last_rounds": tournament.cumulative_rounds,
                "rounds": [r.number for r in rounds],
                "rows": data,
            }
        )


urlpatterns = [
    path(_BASE + "rounds/", TournamentRounds.as_view(), name="api-tournament-rounds"),
    path(_BASE + "rounds/current/", CurrentRound.as_view(), name="api-tournament-current"),
    path(_BASE + "rounds/<id:number>/live/", RoundLive.as_view(), name="api-tournament-live"),
    path(
        _BASE + "rounds/<id:number>/targets/",
        RoundTargets.as_view(),
        name="api-tournament-targets",
    ),
    path(
        _BASE + "rounds/<id:number>/submissions/",
        RoundSubmissions.as_view(),
        name="api-tournament-round-submissions",
    ),
    path(
        _BASE + "rounds/<id:number>/leaderboard/",
        RoundLeaderboard.as_view(),
        name="api-tournament-round-leaderboard",
    ),
    path(
        _BASE + "rounds/<id:number>/leaderboard.csv",
        RoundLeaderboard.as_view(),
        {"as_csv": True},
        name="api-tournament-round-leaderboard-csv",
    ),
    path(
        _BASE + "leaderboard/", CumulativeLeaderboard.as_view(), name="api-tournament-leaderboard"
    ),
    path(
        _BASE + "leaderboard.csv",
        CumulativeLeaderboard.as_view(),
        {"as_csv": True},
        name="api-tournament-leaderboard-csv",
    ),
    path(_BASE + "models/", TeamModels.as_view(), name="api-tournament-models"),
    path(
        "tournament-models/<id:model_id>/current/",
        ModelCurrent.as_view(),
        name="api-tournament-model-current",
    ),
]

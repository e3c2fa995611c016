"""REST API: leaderboards per phase split, the reader's own standing, CSV export, the best
score over time, and the host's split visibility switch."""

from __future__ import annotations

import io

from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:> and <codename:>)
from challenges import leaderboard_rules as rules
from challenges.api.parsers import BoundedJSONParser
from challenges.attachments import csv_response, wants_excel
from challenges.csv_safe import csv_writer
from challenges.leaderboard_access import access_leaderboard
from challenges.selectors.leaderboards import (
    leaderboard_history,
    leaderboard_own_rows,
    leaderboard_page,
    ordering_for,
)
from challenges.selectors.shake_up import shake_up
from challenges.services.hosting import phase_split_set_visibility

PAGE_SIZE = 100
MAX_PAGE_SIZE = 5000
# Past any real leaderboard, yet inside PostgreSQL's bigint: a larger OFFSET is an SQL
# error (a 500), where the reader deserves a 400 that names the bound.
MAX_OFFSET = 1_000_000_000

ORDER_BY = OpenApiParameter("order_by", str, description="a label of the leaderboard's schema")
SCOPE = OpenApiParameter(
    "scope", str, description="hosts only: public, all (every submission) or final (final picks)"
)


class LeaderboardQuery(serializers.Serializer):
    order_by = serializers.CharField(required=False, allow_blank=True, default="")
    scope = serializers.CharField(required=False, allow_blank=True, default="")
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=PAGE_SIZE
    )
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET, default=0)


def _read(request, challenge_id: int, codename: str, split: str):
    query = LeaderboardQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    params = query.validated_data
    view = access_leaderboard(
        request.user, challenge_id, codename, split, scope=params["scope"] or None
    )
    ordering = ordering_for(view, params["order_by"] or None)
    return view, ordering, params


def _header(view, ordering) -> dict:
    split = view.split
    return {
        "challenge": view.challenge.pk,
        "phase": view.phase.codename,
        "split": split.dataset_split.codename,
        "labels": rules.labels_of(split.leaderboard.schema),
        "order_by": ordering.label,
        "descending": ordering.descending,
        "scope": view.scope,
        "visibility": view.visibility,
        "revealed": view.revealed,
        "decimal_precision": split.leaderboard_decimal_precision,
        "show_execution_time": split.show_execution_time,
    }


class Leaderboard(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[
            ORDER_BY,
            SCOPE,
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        responses=OpenApiResponse(
            description="{labels, order_by, count, rows: [{rank, team, scores, display, "
            "submitted_at, is_baseline, ...}]}"
        ),
    )
    def get(self, request, challenge_id: int, codename: str, split: str):
        """The ranked leaderboard of a phase split: one row per team (its best entry, or its
        latest), baselines marked and unranked. 400 names the valid labels."""
        view, ordering, params = _read(request, challenge_id, codename, split)
        page = leaderboard_page(view, ordering, offset=params["offset"], limit=params["limit"])
        return Response(
            {
                **_header(view, ordering),
                "count": page.count,
                "ranked_teams": page.ranked,
                "offset": params["offset"],
                "limit": params["limit"],
                "rows": page.rows,
            }
        )


class LeaderboardMe(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[ORDER_BY], responses=OpenApiResponse(description="{team, rows}"))
    def get(self, request, challenge_id: int, codename: str, split: str):
        """Your team's rows on the leaderboard you can see, with their ranks (empty when
        none of its submissions shows there)."""
        view, ordering, _params = _read(request, challenge_id, codename, split)
        page = leaderboard_own_rows(view, ordering)
        return Response(
            {
                **_header(view, ordering),
                "team_id": view.team_id,
                "ranked_teams": page.ranked,
                "rows": page.rows,
            }
        )


class LeaderboardCsv(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[ORDER_BY, SCOPE], responses={200: OpenApiResponse(description="text/csv")}
    )
    def get(self, request, challenge_id: int, codename: str, split: str):
        """Hosts: the whole leaderboard as CSV, raw scores (not rounded)."""
        view, ordering, _params = _read(request, challenge_id, codename, split)
        view.require_host(_("export leaderboards"))
        labels = rules.labels_of(view.split.leaderboard.schema)
        rows = leaderboard_page(view, ordering).rows
        # A revealed split: each team's public rank and move (Kaggle's shake-up).
        moves = bool(rows) and "move" in rows[0]
        out = io.StringIO()
        writer = csv_writer(out)
        writer.writerow(
            [
                "rank",
                "team",
                "team_id",
                "submission_id",
                "is_baseline",
                "is_host_team",
                # The zone is named in the header, as in every CSV export (UTC ISO 8601).
                "submitted_at (UTC)",
                *labels,
                "execution_time_s",
                "method_name",
                *(["public_rank", "move"] if moves else []),
            ]
        )
        for row in rows:
            writer.writerow(
                [
                    row["rank"] if row["rank"] is not None else "",
                    row["team"],
                    row["team_id"],
                    row["submission_id"],
                    row["is_baseline"],
                    row["is_host_team"],
                    row["submitted_at"],
                    *row["scores"],
                    "" if row.get("execution_time_s") is None else row["execution_time_s"],
                    row["method_name"],
                    *([row["public_rank"], row["move"]] if moves else []),
                ]
            )
        name = f"leaderboard-{view.challenge.pk}-{view.phase.codename}-{view.split.dataset_split.codename}.csv"
        return csv_response(out.getvalue(), name, excel=wants_excel(request))


class LeaderboardHistory(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[ORDER_BY, SCOPE],
        responses=OpenApiResponse(description="{points: [{at, value, team}]}"),
    )
    def get(self, request, challenge_id: int, codename: str, split: str):
        """The best score over time (for a chart): a point each time the best improved."""
        view, ordering, _params = _read(request, challenge_id, codename, split)
        return Response({**_header(view, ordering), "points": leaderboard_history(view, ordering)})


class LeaderboardShakeUp(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses=OpenApiResponse(
            description="{public_split, public_label, private_split, private_label, teams: "
            "[{team, public_rank, public_score, private_rank, private_score, move}]}"
        )
    )
    def get(self, request, challenge_id: int, codename: str, split: str):
        """Kaggle's shake-up of a revealed private split: every team's public and private
        rank and score, and its move (places gained, negative when lost). 404 until the
        split is revealed (or when its phase has no public split)."""
        view, ordering, _params = _read(request, challenge_id, codename, split)
        data = shake_up(view)
        if data is None:
            return Response(
                {"detail": _("This split has no shake-up: it is not a revealed private split.")},
                status=404,
            )
        return Response({**_header(view, ordering), **data})


class PhaseSplitUpdate(serializers.Serializer):
    visibility = serializers.ChoiceField(choices=[1, 2, 3])


class PhaseSplitDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [BoundedJSONParser, FormParser]

    @extend_schema(request=PhaseSplitUpdate, responses=OpenApiResponse(description="{visibility}"))
    def patch(self, request, challenge_id: int, codename: str, split: str):
        """Hosts: set who sees the split's leaderboard (1 host, 2 host and team, 3 public)."""
        view = access_leaderboard(request.user, challenge_id, codename, split)
        view.require_host(_("change a leaderboard's visibility"))
        params = PhaseSplitUpdate(data=request.data)
        params.is_valid(raise_exception=True)
        updated = phase_split_set_visibility(
            phase_split=view.split,
            user=request.user,
            visibility=params.validated_data["visibility"],
        )
        return Response({"split": split, "visibility": updated.visibility})


_BASE = "challenges/<id:challenge_id>/phases/<codename:codename>/splits/<codename:split>/"

urlpatterns = [
    path(_BASE, PhaseSplitDetail.as_view(), name="api-phase-split"),
    path(_BASE + "leaderboard/", Leaderboard.as_view(), name="api-leaderboard"),
    path(_BASE + "leaderboard/me/", LeaderboardMe.as_view(), name="api-leaderboard-me"),
    path(
        _BASE + "leaderboard/history/", LeaderboardHistory.as_view(), name="api-leaderboard-history"
    ),
    path(
        _BASE + "leaderboard/shake-up/",
        LeaderboardShakeUp.as_view(),
        name="api-leaderboard-shake-up",
    ),
    path(_BASE + "leaderboard.csv", LeaderboardCsv.as_view(), name="api-leaderboard-csv"),
]

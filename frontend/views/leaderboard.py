"""The leaderboard page of one phase split, with its best-score-over-time chart."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import mark_safe

from challenges.access import user_is_challenge_host
from challenges.models import ChallengePhaseSplit
from frontend.charts import best_score_svg
from frontend.leaderboard import higher_is_better, leaderboard_for_split, split_visible_to
from frontend.views.common import page
from frontend.views.participant import access_phase


@page
def leaderboard(request, challenge_id: int, codename: str, split: str):
    phase = access_phase(request.user, challenge_id, codename)
    is_host = user_is_challenge_host(request.user, phase.challenge)
    phase_split = ChallengePhaseSplit.objects.select_related(
        "dataset_split", "leaderboard", "phase__challenge"
    ).get(phase=phase, dataset_split__codename=split)
    if not split_visible_to(request.user, phase_split, is_host):
        # A host-only split is not named to anyone else: the same answer as a missing one.
        raise ChallengePhaseSplit.DoesNotExist
    board = leaderboard_for_split(
        split=phase_split, user=request.user, order_by=request.GET.get("order", "")
    )
    precision = phase_split.leaderboard_decimal_precision
    for row in board.rows:
        row.cells = [cell(row.scores.get(label), precision) for label in board.labels]
    chart = best_score_svg(
        board.history,
        label=board.rank_by,
        higher_is_better=higher_is_better(phase_split, board.rank_by),
        baselines=board.baselines,
        now=timezone.now(),
    )
    siblings = [
        ps
        for ps in phase.phase_splits.select_related("dataset_split")
        if split_visible_to(request.user, ps, is_host)
    ]
    return render(
        request,
        "frontend/leaderboard.html",
        {
            "challenge": phase.challenge,
            "phase": phase,
            "split": phase_split,
            "board": board,
            "chart": mark_safe(chart),  # noqa: S308 - built from numbers and escaped labels
            "siblings": siblings,
            "is_host": is_host,
        },
    )


def cell(value, precision: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:.{min(precision, 12)}f}"

"""The leaderboard page of one phase split, with its best-score-over-time chart.

Reads go through `challenges.leaderboard_access.access_leaderboard` and the selectors
in `challenges.selectors.leaderboards`, like the API: the page shows exactly what the API would.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from challenges import leaderboard_rules as rules
from challenges.access import access_challenge, access_challenge_as_host, user_is_challenge_host
from challenges.discussion.selectors import writeups_by_team_name
from challenges.leaderboard_access import Scope, access_leaderboard, may_reveal, splits_listed_to
from challenges.models import ChallengePhaseSplit
from challenges.selectors.leaderboards import (
    leaderboard_history,
    leaderboard_own_rows,
    leaderboard_page,
    ordering_for,
)
from challenges.services.hosting import phase_split_reveal, phase_split_set_visibility
from challenges.services.participation import ParticipationError
from frontend.charts import best_score_svg
from frontend.forms import VisibilityForm
from frontend.labels import SCOPE, label
from frontend.views.common import int_param, page, safe_next

PAGE_SIZE = 100


@page
def leaderboard(request, challenge_id: int, codename: str, split: str):
    view = access_leaderboard(
        request.user,
        challenge_id,
        codename,
        split,
        scope=_host_scope(request, challenge_id),
    )
    try:
        ordering = ordering_for(view, request.GET.get("order"))
    except rules.UnknownLabel:
        ordering = ordering_for(view, None)
    labels = rules.labels_of(view.split.leaderboard.schema)
    # Capped: an absurd page number must not become an offset the database refuses.
    number = min(int_param(request.GET.get("page")) or 1, 1_000_000)
    board = leaderboard_page(view, ordering, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    pages = Paginator(range(board.count), PAGE_SIZE).get_page(number) if board.count else None
    own = (
        []
        if any(r["is_own_team"] for r in board.rows)
        else leaderboard_own_rows(view, ordering).rows
    )
    # Solution write-ups of this phase, by team name (one query): linked from the team's row
    # wherever the board names the team.
    writeups = writeups_by_team_name(view.phase)
    for row in [*board.rows, *own]:
        row["submitted"] = dt.datetime.fromisoformat(row["submitted_at"])
        row["writeup_id"] = writeups.get(row["team"]) if row["team"] else None
    index = labels.index(ordering.label)
    baselines = [
        (row["method_name"] or row["team"] or "baseline", row["scores"][index])
        for row in board.rows
        if row["is_baseline"] and row["scores"][index] is not None
    ]
    history = [
        (dt.datetime.fromisoformat(p["at"]), p["value"])
        for p in leaderboard_history(view, ordering)
    ]
    chart = best_score_svg(
        history,
        label=ordering.label,
        higher_is_better=ordering.descending,
        baselines=baselines,
        now=timezone.now(),
    )
    siblings = splits_listed_to(
        view.is_host, view.phase.phase_splits.select_related("dataset_split")
    )
    query = {"order": ordering.label, **({"scope": view.scope} if view.is_host else {})}
    return render(
        request,
        "frontend/leaderboard.html",
        {
            "view": view,
            "challenge": view.challenge,
            "phase": view.phase,
            "split": view.split,
            "labels": labels,
            "ordering": ordering,
            "rows": board.rows,
            # A revealed split: each row's move from the public rank (the shake-up).
            "moves": bool(board.rows) and "move" in board.rows[0],
            "own_rows": own,
            "count": board.count,
            "pages": pages,
            "chart": mark_safe(chart),  # noqa: S308 - built from numbers and escaped labels
            "siblings": siblings,
            "has_baselines": bool(baselines),
            "scopes": list(SCOPE.items()),
            "query": urlencode(query),
            "may_reveal": view.is_host and may_reveal(view.split),
            "visibility_form": VisibilityForm(initial={"visibility": view.split.visibility}),
            "csv_url": reverse(
                "api-leaderboard-csv", args=[view.challenge.pk, view.phase.codename, split]
            )
            + "?"
            + urlencode(query),
        },
    )


def _host_scope(request, challenge_id: int) -> str | None:
    """Hosts may choose the scope (?scope=all|public|final); from anyone else, or an
    unknown value, it is ignored rather than refused."""
    scope = request.GET.get("scope")
    if scope not in Scope.values:
        return None
    challenge = access_challenge(request.user, challenge_id)
    return scope if user_is_challenge_host(request.user, challenge) else None


@login_required
@require_POST
@page
def set_visibility(request, challenge_id: int, codename: str, split: str):
    challenge = access_challenge_as_host(request.user, challenge_id)
    phase_split = ChallengePhaseSplit.objects.select_related("phase__challenge").get(
        phase__challenge=challenge, phase__codename=codename, dataset_split__codename=split
    )
    form = VisibilityForm(request.POST)
    if form.is_valid():
        phase_split_set_visibility(
            phase_split=phase_split, user=request.user, visibility=form.cleaned_data["visibility"]
        )
        messages.success(
            request,
            _("%(phase)s / %(split)s is now: %(visibility)s.")
            % {
                "phase": codename,
                "split": split,
                "visibility": label("visibility", phase_split.visibility).lower(),
            },
        )
    else:
        messages.error(request, _("Choose a visibility: host only, host and team, or public."))
    return redirect(
        safe_next(request, reverse("leaderboard", args=[challenge.pk, codename, split]))
    )


@login_required
@require_POST
@page
def reveal(request, challenge_id: int, codename: str, split: str):
    """A host reveals a private split after its phase ended (`private_splits_reveal: by_host`)."""
    challenge = access_challenge_as_host(request.user, challenge_id)
    phase_split = ChallengePhaseSplit.objects.select_related(
        "phase__challenge", "dataset_split"
    ).get(phase__challenge=challenge, phase__codename=codename, dataset_split__codename=split)
    try:
        phase_split_reveal(phase_split=phase_split, user=request.user)
    except ParticipationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("The private leaderboard is revealed: everyone sees it and its shake-up.")
        )
    return redirect(reverse("leaderboard", args=[challenge.pk, codename, split]))

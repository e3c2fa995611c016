"""Kaggle's mechanics as pages: a challenge's team merges, and the shake-up of a revealed
private split (public against private score for every team)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from challenges.access import (
    access_challenge,
    access_team_merge,
    team_leader_id,
    user_is_challenge_host,
)
from challenges.deadlines import merger_closed, merger_deadline
from challenges.leaderboard_access import access_leaderboard
from challenges.models import ParticipantTeam, TeamMerge
from challenges.selectors import participation_for_user, team_merges_of, teams_taking_part
from challenges.selectors.shake_up import shake_up
from challenges.services.merges import (
    MergeRefused,
    team_merge_accept,
    team_merge_decline,
    team_merge_request,
    team_merge_withdraw,
)
from challenges.services.participation import ParticipationError
from frontend.charts import shake_up_svg
from frontend.views.common import int_param, page


@login_required
@page
def merges(request, challenge_id: int):
    """Your team's merge requests in a challenge (hosts: every merge), and a form to ask."""
    challenge = access_challenge(request.user, challenge_id)
    is_host = user_is_challenge_host(request.user, challenge)
    participation = participation_for_user(request.user, challenge)
    if participation is None and not is_host:
        messages.info(request, _("Your team does not take part in this challenge yet."))
        return redirect(reverse("challenge", args=[challenge.pk]) + "#participate")
    team = participation.team if participation else None
    leader_id = team_leader_id(team) if team else None
    rows = list(team_merges_of(challenge, team.pk if team else None))
    for merge in rows:
        merge.incoming = team is not None and merge.receiving_team_id == team.pk
        merge.may_answer = (
            merge.incoming
            and merge.status == TeamMerge.Status.PENDING
            and leader_id == request.user.pk
        )
        merge.may_withdraw = (
            team is not None
            and merge.requesting_team_id == team.pk
            and merge.status == TeamMerge.Status.PENDING
        )
    return render(
        request,
        "frontend/merges.html",
        {
            "challenge": challenge,
            "team": team,
            "is_host": is_host,
            "is_leader": leader_id == request.user.pk,
            "merges": rows,
            "candidates": teams_taking_part(challenge, exclude_team_id=team.pk) if team else [],
            "merger_deadline": merger_deadline(challenge),
            "merger_closed": merger_closed(challenge),
        },
    )


@login_required
@require_POST
@page
def merge_request(request, challenge_id: int):
    challenge = access_challenge(request.user, challenge_id)
    url = reverse("merges", args=[challenge.pk])
    participation = participation_for_user(request.user, challenge)
    receiving = ParticipantTeam.objects.filter(pk=int_param(request.POST.get("team")) or 0).first()
    if participation is None or receiving is None:
        messages.error(request, _("Choose a team taking part in this challenge."))
        return redirect(url)
    try:
        team_merge_request(
            challenge=challenge,
            requesting_team=participation.team,
            receiving_team=receiving,
            user=request.user,
        )
    except ParticipationError as exc:
        messages.error(request, str(exc))
        return redirect(url)
    messages.success(
        request,
        _("%(team)s was asked to merge; its leader decides.") % {"team": receiving.name},
    )
    return redirect(url)


DECISIONS = {
    "accept": (team_merge_accept, gettext_lazy("The teams are merged.")),
    "decline": (team_merge_decline, gettext_lazy("The merge request was declined.")),
    "withdraw": (team_merge_withdraw, gettext_lazy("The merge request was withdrawn.")),
}


@login_required
@require_POST
@page
def merge_decide(request, merge_id: int, decision: str):
    if decision not in DECISIONS:
        raise Http404(_("There is no such decision."))
    merge = access_team_merge(request.user, merge_id)
    url = reverse("merges", args=[merge.challenge_id])
    service, done = DECISIONS[decision]
    try:
        service(merge=merge, user=request.user)
    except (MergeRefused, ParticipationError) as exc:
        messages.error(request, str(exc))
        return redirect(url)
    messages.success(request, str(done))
    return redirect(url)


@page
def shake_up_page(request, challenge_id: int, codename: str, split: str):
    view = access_leaderboard(request.user, challenge_id, codename, split)
    data = shake_up(view)
    if data is None:
        messages.info(request, _("This split has no shake-up: it is not a revealed private split."))
        return redirect("leaderboard", challenge_id, codename, split)
    chart = shake_up_svg(
        [
            (t["public_score"], t["private_score"], t["team"] or _("(anonymous)"), t["is_own_team"])
            for t in data["teams"]
            if t["public_score"] is not None and t["private_score"] is not None
        ],
        x_label=_("public %(label)s") % {"label": data["public_label"]},
        y_label=_("private %(label)s") % {"label": data["private_label"]},
    )
    return render(
        request,
        "frontend/shake_up.html",
        {
            "view": view,
            "challenge": view.challenge,
            "phase": view.phase,
            "split": view.split,
            "data": data,
            "chart": mark_safe(chart),  # noqa: S308 - built from numbers and escaped names
        },
    )

"""The tournament page of a phase: rounds, the leaderboard of a round and the cumulative
one (the same selectors as the API and CSV), a team's score by round, the reader's team's
models and round submissions (with its models' failures), and the hosts' round forms."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from challenges.access import user_is_challenge_host
from challenges.models import TournamentModel
from challenges.selectors import participation_for_user
from challenges.services.submissions import SubmissionRefused
from challenges.tournaments import (
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
from challenges.tournaments.round_leaderboards import (
    cumulative_leaderboard,
    round_leaderboard,
    team_scores_by_round,
)
from challenges.tournaments.runtimes import runtime_default, runtimes_describe
from frontend.tournament_charts import score_by_round_svg
from frontend.views.common import int_param, page


def _tournament(request, challenge_id: int, codename: str):
    return access_tournament(request.user, challenge_id, codename)


@page
def tournament(request, challenge_id: int, codename: str):
    phase, settings_ = _tournament(request, challenge_id, codename)
    challenge = phase.challenge
    rounds = list(phase.rounds.order_by("-number"))
    number = int_param(request.GET.get("round"))
    shown = next((r for r in rounds if r.number == number), rounds[0] if rounds else None)
    round_rows = round_leaderboard(opened=shown, tournament=settings_) if shown else []
    resolved, cumulative = cumulative_leaderboard(phase=phase, tournament=settings_)
    participation = participation_for_user(request.user, challenge)
    team_id = int_param(request.GET.get("team")) or (
        participation.team_id if participation else None
    )
    if team_id is None and cumulative:
        team_id = cumulative[0].team_id
    names = {row.team_id: row.team for row in cumulative}
    chart = ""
    if team_id in names:
        chart = score_by_round_svg(
            team_scores_by_round(phase=phase, team_id=team_id, tournament=settings_),
            label=settings_.rank_by,
            team=names[team_id],
        )
    own_models = own_subs = []
    if participation is not None:
        own_models = list(
            TournamentModel.objects.filter(phase=phase, team_id=participation.team_id)
        )
        own_subs = list(team_round_submissions(phase=phase, team=participation.team)[:50])
    base = reverse("tournament", args=[challenge.pk, codename])
    return render(
        request,
        "frontend/tournament.html",
        {
            "challenge": challenge,
            "phase": phase,
            "tournament": settings_,
            "rounds": rounds,
            "current": round_current(phase=phase),
            "shown": shown,
            "round_rows": round_rows,
            "resolved": resolved,
            "cumulative": cumulative,
            "metrics": METRICS,
            "chart": mark_safe(chart),  # noqa: S308 - built from escaped parts
            "chart_team": names.get(team_id),
            "participation": participation,
            "own_models": own_models,
            "own_subs": own_subs,
            "is_host": user_is_challenge_host(request.user, challenge),
            "base": base,
            "runtimes": runtimes_describe() if participation is not None else [],
            "default_runtime": runtime_default(),
        },
    )


def _back(challenge_id: int, codename: str, **query) -> str:
    url = reverse("tournament", args=[challenge_id, codename])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@login_required
@require_POST
@page
def open_round(request, challenge_id: int, codename: str):
    phase, _t = _tournament(request, challenge_id, codename)
    upload = request.FILES.get("live_features")
    closes_at = parse_datetime(request.POST.get("closes_at") or "") or None
    if closes_at is not None and timezone.is_naive(closes_at):
        # Without an offset, the host meant the time zone the page showed them.
        closes_at = timezone.make_aware(closes_at)
    if upload is None:
        messages.error(request, _("Choose the round's live features file (CSV)."))
        return redirect(_back(challenge_id, codename))
    try:
        opened = round_open(
            user=request.user,
            phase=phase,
            live_features=upload,
            data_version=request.POST.get("data_version", ""),
            closes_at=closes_at,
        )
    except SubmissionRefused as exc:
        messages.error(request, str(exc))
        return redirect(_back(challenge_id, codename))
    messages.success(
        request,
        _("Round %(number)s is open; every team's model runs on it.") % {"number": opened.number},
    )
    return redirect(_back(challenge_id, codename, round=opened.number))


@login_required
@require_POST
@page
def upload_targets(request, challenge_id: int, codename: str, number: int):
    opened = access_round(request.user, challenge_id, codename, number)
    upload = request.FILES.get("targets")
    if upload is None:
        messages.error(request, _("Choose the round's targets file (CSV id,era,target)."))
        return redirect(_back(challenge_id, codename, round=number))
    try:
        count = round_targets_upload(user=request.user, round=opened, targets=upload)
    except SubmissionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Targets of round %(number)s arrived: %(count)s submission(s) are being scored.")
            % {"number": number, "count": count},
        )
    return redirect(_back(challenge_id, codename, round=number))


@login_required
@require_POST
@page
def upload_model(request, challenge_id: int, codename: str):
    phase, _t = _tournament(request, challenge_id, codename)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose your pickled model (.pkl)."))
        return redirect(_back(challenge_id, codename))
    try:
        tournament_model_upload(
            user=request.user,
            phase=phase,
            participation=participation_for_user(request.user, phase.challenge),
            upload=upload,
            make_current=bool(request.POST.get("current")),
            python_version=request.POST.get("python_version"),
        )
    except SubmissionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _(
                "Model uploaded: it runs now on the open round and the validation data, "
                "and on every round from the next one on."
            ),
        )
    return redirect(_back(challenge_id, codename))


@login_required
@require_POST
@page
def mark_current(request, challenge_id: int, codename: str, model_id: int):
    phase, _t = _tournament(request, challenge_id, codename)
    model = access_team_model(request.user, model_id)
    if model.phase_id != phase.pk:
        raise TournamentModel.DoesNotExist
    tournament_model_mark_current(user=request.user, model=model)
    messages.success(request, _("%(file)s runs on the next rounds.") % {"file": model.file_name})
    return redirect(_back(challenge_id, codename))


@login_required
@require_POST
@page
def submit_predictions(request, challenge_id: int, codename: str, number: int):
    opened = access_round(request.user, challenge_id, codename, number)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose your predictions (CSV id,prediction)."))
        return redirect(_back(challenge_id, codename, round=number))
    try:
        round_submission_create(
            user=request.user,
            round=opened,
            participation=participation_for_user(request.user, opened.phase.challenge),
            upload=upload,
        )
    except SubmissionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Predictions for round %(number)s accepted; they are scored when its targets arrive.")
            % {"number": number},
        )
    return redirect(_back(challenge_id, codename, round=number))

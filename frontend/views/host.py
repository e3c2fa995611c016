"""Host pages: upload a challenge, the dashboard, every submission, re-run, re-score."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.db.models import Count, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from challenges.access import access_challenge_as_host
from challenges.attachments import EXCEL_BOM, content_disposition, wants_excel
from challenges.bundle import BundleError
from challenges.csv_safe import csv_writer
from challenges.models import Challenge, ChallengePhaseSplit, HostTeam, Submission
from challenges.result_warnings import results_lacking_labels
from challenges.services.bundles import SameTitleExists, challenge_load_bundle
from challenges.services.remote_evaluation import queue_name
from challenges.services.submissions import SubmissionRefused, phase_rescore, submission_rerun
from challenges.services.teams import host_team_create
from challenges.submission_access import access_submission
from frontend.forms import BundleForm, HostSubmissionFilter, HostTeamForm, NewChallengeForm
from frontend.views.common import json_redirect, page, safe_next, wants_json


def _my_host_teams(user):
    return HostTeam.objects.filter(memberships__user=user).order_by("name")


@login_required
def dashboard(request):
    team_form = HostTeamForm(request.POST or None)
    if request.method == "POST" and team_form.is_valid():
        try:
            team = host_team_create(name=team_form.cleaned_data["name"], creator=request.user)
        except IntegrityError:
            team_form.add_error("name", _("A host team with this name exists: choose another."))
        else:
            messages.success(
                request,
                _("Host team “%(name)s” created. Upload a challenge next.") % {"name": team.name},
            )
            return redirect("host-upload")
    host_teams = list(_my_host_teams(request.user))
    challenges = (
        Challenge.objects.filter(host_team__in=host_teams)
        .select_related("host_team")
        .annotate(
            submission_count=Count("phases__submissions", distinct=True),
            running_count=Count(
                "phases__submissions",
                filter=Q(phases__submissions__status__in=Submission.IN_FLIGHT),
                distinct=True,
            ),
        )
        .order_by("-created_at")
    )
    return render(
        request,
        "frontend/host/dashboard.html",
        {"host_teams": host_teams, "challenges": challenges, "team_form": team_form},
    )


def _problems_response(request, template: str, context: dict, problems) -> HttpResponse:
    context = {**context, "problems": problems}
    if wants_json(request):
        html = render_to_string("frontend/host/_problems.html", context, request=request)
        return JsonResponse({"ok": False, "html": html}, status=400)
    return render(request, template, context, status=400)


def _loaded(request, result) -> HttpResponse:
    facts = {"title": result.challenge.title, "version": result.script.version}
    parts = [
        _("“%(title)s” created (evaluation script v%(version)s).") % facts
        if result.created
        else _("“%(title)s” updated (evaluation script v%(version)s).") % facts
    ]
    if result.warnings:
        parts.append(
            ngettext(
                "%(count)d warning: see below.",
                "%(count)d warnings: see below.",
                len(result.warnings),
            )
            % {"count": len(result.warnings)}
        )
    if not result.challenge.approved_by_admin:
        parts.append(_("An admin must approve it before participants can see it."))
    messages.success(request, " ".join(parts))
    return json_redirect(request, reverse("host-challenge", args=[result.challenge.pk]))


def _same_title_response(request, context: dict, exc: SameTitleExists) -> HttpResponse:
    """Ask whether the zip is a new version of the challenge with its title."""
    context = {**context, "same_title": exc.existing}
    if wants_json(request):
        html = render_to_string("frontend/host/_same_title.html", context, request=request)
        return JsonResponse({"ok": False, "html": html}, status=409)
    return render(request, "frontend/host/upload.html", context, status=409)


@login_required
def upload(request):
    host_teams = _my_host_teams(request.user)
    if not host_teams.exists():
        messages.info(request, _("Create a host team first: challenges belong to a host team."))
        return redirect("host")
    form = NewChallengeForm(request.POST or None, request.FILES or None, host_teams=host_teams)
    context = {"form": form}
    if request.method == "POST":
        if not form.is_valid():
            return _problems_response(request, "frontend/host/upload.html", context, [])
        try:
            result = challenge_load_bundle(
                source=form.cleaned_data["file"],
                user=request.user,
                host_team=form.cleaned_data["host_team"],
                new_challenge=form.cleaned_data["new_challenge"],
            )
        except SameTitleExists as exc:
            return _same_title_response(request, context, exc)
        except BundleError as exc:
            return _problems_response(
                request, "frontend/host/upload.html", context, exc.errors + exc.warnings
            )
        return _loaded(request, result)
    return render(request, "frontend/host/upload.html", context)


@login_required
@page
def challenge_manage(request, challenge_id: int):
    challenge = access_challenge_as_host(request.user, challenge_id)
    form = BundleForm(request.POST or None, request.FILES or None)
    context = {
        "challenge": challenge,
        "form": form,
        "phases": challenge.phases.prefetch_related(
            "phase_splits__dataset_split", "phase_splits__leaderboard"
        ).annotate(submission_count=Count("submissions")),
        "scripts": challenge.scripts.order_by("-version")[:5],
        "visibilities": ChallengePhaseSplit.Visibility.choices,
        "remote_queue": queue_name(challenge) if challenge.remote_evaluation else "",
        "lacking_labels": results_lacking_labels(challenge),
    }
    if request.method == "POST":
        if not form.is_valid():
            return _problems_response(request, "frontend/host/challenge.html", context, [])
        try:
            result = challenge_load_bundle(
                source=form.cleaned_data["file"],
                user=request.user,
                host_team=challenge.host_team,
                challenge=challenge,
            )
        except BundleError as exc:
            return _problems_response(
                request, "frontend/host/challenge.html", context, exc.errors + exc.warnings
            )
        return _loaded(request, result)
    return render(request, "frontend/host/challenge.html", context)


@login_required
@require_POST
@page
def rescore(request, challenge_id: int, codename: str):
    challenge = access_challenge_as_host(request.user, challenge_id)
    phase = challenge.phases.get(codename=codename)
    count = phase_rescore(phase=phase, user=request.user)
    messages.success(
        request,
        _("%(count)s submission(s) of %(phase)s queued again with the current script.")
        % {"count": count, "phase": phase.name},
    )
    return redirect("host-challenge", challenge.pk)


CSV_COLUMNS = [
    "id",
    "phase",
    "team",
    "status",
    "submitted_at",
    "finished_at",
    "file_name",
    "method_name",
    "is_public",
    "is_baseline",
    "attempt",
    "failure_message",
    "is_late",
    "merged_from_team",
]
TIME_COLUMNS = {"submitted_at", "finished_at"}


@login_required
@page
def submissions(request, challenge_id: int):
    challenge = access_challenge_as_host(request.user, challenge_id)
    phases = list(challenge.phases.all())
    filters = HostSubmissionFilter(request.GET or None, phases=phases)
    qs = (
        Submission.objects.filter(phase__challenge=challenge)
        .select_related("phase", "team", "created_by", "merged_from_team")
        .prefetch_related("results__phase_split__dataset_split")
        .order_by("-submitted_at", "-pk")
    )
    if filters.is_valid():
        if filters.cleaned_data["phase"]:
            qs = qs.filter(phase__codename=filters.cleaned_data["phase"])
        if filters.cleaned_data["status"]:
            qs = qs.filter(status=filters.cleaned_data["status"])
        if filters.cleaned_data["team"]:
            qs = qs.filter(team__name__icontains=filters.cleaned_data["team"])
    if request.GET.get("format") == "csv":
        return _csv(challenge, qs, excel=wants_excel(request))
    return render(
        request,
        "frontend/host/submissions.html",
        {
            "challenge": challenge,
            "filters": filters,
            "submissions": qs[:500],
            "total": qs.count(),
            "query": request.GET.urlencode(),
        },
    )


def _csv(challenge: Challenge, qs, *, excel: bool) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition(
        f"challenge-{challenge.pk}-submissions.csv"
    )
    if excel:
        response.write(EXCEL_BOM)
    writer = csv_writer(response)
    # Times are the reader's, as on the page; the header names the zone and each value
    # carries its offset, so a spreadsheet and a script both read them right.
    zone = timezone.get_current_timezone_name()
    writer.writerow(
        [f"{c} ({zone})" if c in TIME_COLUMNS else c for c in CSV_COLUMNS] + ["results"]
    )
    for s in qs:
        row = [
            s.pk,
            s.phase.codename,
            s.team.name,
            s.status,
            timezone.localtime(s.submitted_at).isoformat(),
            timezone.localtime(s.finished_at).isoformat() if s.finished_at else "",
            s.file_name,
            s.method_name,
            s.is_public,
            s.is_baseline,
            s.attempt,
            s.failure_message,
            s.is_late,
            s.merged_from_team.name if s.merged_from_team else "",
        ]
        results = {
            r.phase_split.dataset_split.codename: r.scores for r in s.results.all() if r.is_active
        }
        # JSON, which every tool reads (it was Python's repr).
        writer.writerow([*row, json.dumps(results, sort_keys=True)])
    return response


@login_required
@require_POST
@page
def rerun(request, submission_id: int):
    view = access_submission(request.user, submission_id)
    try:
        submission_rerun(submission=view.submission, user=request.user)
        messages.success(request, _("Submission %(id)s queued again.") % {"id": submission_id})
    except SubmissionRefused as exc:
        messages.error(request, str(exc))
    return redirect(safe_next(request, reverse("submission", args=[submission_id])))

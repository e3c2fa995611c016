"""Participant pages: teams, taking part, submitting, following one's submissions."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from challenges.access import (
    access_challenge,
    access_phase,
    phases_listed_to,
    user_is_challenge_host,
)
from challenges.discussion.selectors import writeup_may_open, writeups_by_submission
from challenges.leaderboard_access import results_shown_to
from challenges.leaderboard_rules import visibility_is_locked
from challenges.models import ChallengePhase, Submission
from challenges.selectors import participation_for_user, teams_of_user
from challenges.services.participation import (
    ParticipationError,
    challenge_participate,
    participant_team_create,
    participant_team_join,
    participant_team_leave,
    participant_team_rotate_code,
)
from challenges.services.resumable import submission_from_upload
from challenges.services.submissions import (
    SubmissionFields,
    SubmissionRefused,
    max_upload_bytes,
    quota_state,
    submission_cancel,
    submission_create,
)
from challenges.services.submissions.intake import submission_is_late
from challenges.submission_access import access_submission, access_submitter
from challenges.throttles import PerUser
from frontend.forms import SubmissionForm, TeamCreateForm, TeamJoinForm
from frontend.views.common import int_param, page, safe_next, throttle_page, wants_json


@login_required
def teams(request):
    create_form = TeamCreateForm(prefix="create")
    join_form = TeamJoinForm(prefix="join")
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "create":
                create_form = TeamCreateForm(request.POST, prefix="create")
                if create_form.is_valid():
                    team = participant_team_create(
                        name=create_form.cleaned_data["name"], creator=request.user
                    )
                    messages.success(request, _("Team “%(name)s” created.") % {"name": team.name})
                    return redirect(safe_next(request, reverse("teams")))
            elif action == "join":
                join_form = TeamJoinForm(request.POST, prefix="join")
                if join_form.is_valid():
                    team = participant_team_join(
                        user=request.user, invitation_code=join_form.cleaned_data["invitation_code"]
                    )
                    messages.success(
                        request, _("You are in the team “%(name)s”.") % {"name": team.name}
                    )
                    return redirect(safe_next(request, reverse("teams")))
            elif action in ("rotate", "leave"):
                team = (
                    teams_of_user(request.user)
                    .filter(pk=int_param(request.POST.get("team")) or 0)
                    .first()
                )
                if team is None:
                    messages.error(request, _("You are not a member of that team."))
                elif action == "rotate":
                    participant_team_rotate_code(team=team, user=request.user)
                    messages.success(
                        request, _("%(name)s has a new invitation code.") % {"name": team.name}
                    )
                else:
                    participant_team_leave(team=team, user=request.user)
                    messages.success(request, _("You left %(name)s.") % {"name": team.name})
                return redirect("teams")
        except ParticipationError as exc:
            if action in ("rotate", "leave"):
                messages.error(request, str(exc))
                return redirect("teams")
            (create_form if action == "create" else join_form).add_error(None, str(exc))
    return render(
        request,
        "frontend/teams.html",
        {
            "teams": teams_of_user(request.user),
            "create_form": create_form,
            "join_form": join_form,
            "next": request.GET.get("next") or request.POST.get("next", ""),
        },
    )


@login_required
@require_POST
@page
def participate(request, challenge_id: int):
    challenge = access_challenge(request.user, challenge_id)
    team_id = int_param(request.POST.get("team"))
    team = teams_of_user(request.user).filter(pk=team_id).first() if team_id else None
    url = reverse("challenge", args=[challenge.pk])
    if team is None:
        messages.error(request, _("Choose one of your teams (create one on the Teams page first)."))
        return redirect(url + "#participate")
    try:
        challenge_participate(
            challenge=challenge,
            team=team,
            user=request.user,
            accept_terms=request.POST.get("accept_terms") == "on",
        )
    except ParticipationError as exc:
        messages.error(request, str(exc))
        return redirect(url + "#participate")
    messages.success(
        request,
        _("%(team)s takes part in %(challenge)s. Good luck!")
        % {"team": team.name, "challenge": challenge.title},
    )
    return redirect(url + "#phases")


QUOTA_LABELS = {
    "per_day": (gettext_lazy("Today (UTC day)"), None),
    "per_month": (gettext_lazy("This month"), None),
    "total": (gettext_lazy("In total"), gettext_lazy("never")),
    "concurrent": (gettext_lazy("At once (waiting or running)"), gettext_lazy("when one finishes")),
    "failed_per_day": (gettext_lazy("Failed today (UTC day)"), None),
}


def _quota(phase: ChallengePhase, participation) -> dict:
    states = quota_state(phase=phase, team_id=participation.team_id)
    return {
        "states": [
            {
                "label": QUOTA_LABELS[s.quota][0],
                "used": s.used,
                "limit": s.limit,
                "remaining": s.remaining,
                "resets": _resets(s.resets_at) if s.resets_at else QUOTA_LABELS[s.quota][1],
            }
            for s in states
        ],
        "remaining": min(s.remaining for s in states),
        "max_bytes": max_upload_bytes(phase),
    }


def _resets(at) -> str:
    """When a quota resets, in the reader's zone, named (frontend.templatetags.when)."""
    local = timezone.localtime(at)
    return f"{formats.date_format(local, 'SHORT_DATETIME_FORMAT')} {local:%Z}"


@login_required
@throttle_page(("submit_user", PerUser))
@page
def submit(request, challenge_id: int, codename: str):
    """Participants submit for their team; hosts submit as the hosts' own team (baselines
    and trial runs), which is made on their first upload."""
    phase = access_phase(request.user, challenge_id, codename=codename)
    challenge = phase.challenge
    submitter = access_submitter(request.user, phase)
    if not submitter.may_submit:
        messages.info(
            request, _("Take part in the challenge first: choose a team, accept the terms.")
        )
        return redirect(reverse("challenge", args=[challenge.pk]) + "#participate")
    form = SubmissionForm(
        request.POST or None, request.FILES or None, phase=phase, host=submitter.is_host
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            fields = SubmissionFields.from_mapping({**data, "meta_attributes": form.meta_values()})
            if data.get("upload_id"):
                # The file went up resumably (resumable.js); the form's fields are checked
                # here, as for a plain upload, and finishing makes the submission.
                submission = submission_from_upload(
                    submitter=submitter, upload_id=data["upload_id"], fields=fields
                )
            else:
                submission = submission_create(
                    submitter=submitter, upload=data["file"], fields=fields
                )
        except SubmissionRefused as exc:
            form.add_error("file" if exc.field == "file" else None, str(exc))
        else:
            if wants_json(request):
                html = render_to_string(
                    "frontend/_submitted.html",
                    {"submission": submission, "challenge": challenge},
                    request=request,
                )
                return JsonResponse({"ok": True, "html": html})
            messages.success(request, _("Submission %(id)s is queued.") % {"id": submission.pk})
            return redirect(reverse("submission", args=[submission.pk]))
    participation = submitter.participation
    context = {
        "phase": phase,
        "challenge": challenge,
        "form": form,
        "team": participation.team if participation else None,
        "is_host": submitter.is_host,
        # Hosts have no quota.
        "quota": _quota(phase, participation) if participation and not submitter.is_host else None,
        "visibility_locked": visibility_is_locked(phase),
        "late": not submitter.is_host and submission_is_late(phase, timezone.now()),
    }
    if request.method == "POST" and wants_json(request):
        html = render_to_string("frontend/_form_errors.html", context, request=request)
        return JsonResponse({"ok": False, "html": html}, status=400)
    return render(request, "frontend/submit.html", context)


@login_required
@page
def my_submissions(request, challenge_id: int):
    challenge = access_challenge(request.user, challenge_id)
    participation = participation_for_user(request.user, challenge)
    is_host = user_is_challenge_host(request.user, challenge)
    if participation is None:
        if is_host:
            return redirect("host-submissions", challenge.pk)
        messages.info(request, _("Your team does not take part in this challenge yet."))
        return redirect(reverse("challenge", args=[challenge.pk]) + "#participate")
    phases = {p.pk: p for p in phases_listed_to(is_host, challenge.phases.all())}
    now = timezone.now()
    for phase in phases.values():
        phase.visibility_locked = visibility_is_locked(phase)
        phase.late = submission_is_late(phase, now)
    submissions = (
        Submission.objects.filter(team=participation.team, phase__in=list(phases))
        .select_related("merged_from_team")
        .prefetch_related("results__phase_split__dataset_split")
        .order_by("-submitted_at", "-pk")[:200]
    )
    rows = []
    for s in submissions:
        s.phase = phases[s.phase_id]
        rows.append(
            {"submission": s, "results": results_shown_to(is_host, s.results.all(), s.phase)}
        )
    return render(
        request,
        "frontend/my_submissions.html",
        {
            "challenge": challenge,
            "team": participation.team,
            "rows": rows,
            "phases": list(phases.values()),
        },
    )


@login_required
@page
def submission_detail(request, submission_id: int):
    view = access_submission(request.user, submission_id)
    view.submission.phase.visibility_locked = visibility_is_locked(view.submission.phase)
    return render(
        request,
        "frontend/submission.html",
        {
            "view": view,
            "submission": view.submission,
            "challenge": view.submission.phase.challenge,
            "results": view.visible_results(),
            "writeup_id": writeups_by_submission([submission_id]).get(submission_id),
            "writeup_open": writeup_may_open(view.submission),
        },
    )


@login_required
@require_POST
@page
def cancel(request, submission_id: int):
    view = access_submission(request.user, submission_id)
    try:
        submission_cancel(submission=view.submission, user=request.user)
        messages.success(request, _("Submission %(id)s cancelled.") % {"id": submission_id})
    except SubmissionRefused as exc:
        messages.error(request, str(exc))
    return redirect(safe_next(request, reverse("submission", args=[submission_id])))

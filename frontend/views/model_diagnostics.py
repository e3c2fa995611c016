"""A model's page (DESIGN section 16): its status and cause, the runtime it ran under, and
its diagnostics on the validation data, drawn by the server."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils.safestring import mark_safe

from challenges.tournaments.access import access_team_model, access_tournament
from challenges.tournaments.model_runs import SUMMARY_KEYS, model_diagnostics_rows
from frontend.tournament_charts import per_era_svg
from frontend.views.common import page


@login_required
@page
def model_diagnostics(request, challenge_id: int, codename: str, model_id: int):
    phase, _t = access_tournament(request.user, challenge_id, codename)
    model = access_team_model(request.user, model_id)
    if model.phase_id != phase.pk:
        raise Http404
    rows = model_diagnostics_rows(model)
    diagnostics = model.diagnostics or {}
    return render(
        request,
        "frontend/model_diagnostics.html",
        {
            "challenge": phase.challenge,
            "phase": phase,
            "model": model,
            "rows": rows,
            "summary": [(k, diagnostics[k]) for k in SUMMARY_KEYS if k in diagnostics],
            "chart": mark_safe(per_era_svg(rows, model=model.file_name)),  # noqa: S308 - escaped parts
        },
    )

"""Who may see which tournament, round and model: asked by the API and the pages alike."""

from __future__ import annotations

from challenges.access import access_phase
from challenges.models import Round, TournamentModel
from challenges.tournaments.core import tournament_of


def access_tournament(user, challenge_id: int, codename: str):
    """(phase, tournament) of a phase `user` may see; DoesNotExist otherwise."""
    phase = access_phase(user, challenge_id, codename=codename)
    return phase, tournament_of(phase)


def access_round(user, challenge_id: int, codename: str, number: int) -> Round:
    phase, _tournament = access_tournament(user, challenge_id, codename)
    return Round.objects.select_related("phase__challenge").get(phase=phase, number=number)


def access_team_model(user, model_id: int) -> TournamentModel:
    """A model of one of the user's teams; DoesNotExist otherwise (no existence leak)."""
    return TournamentModel.objects.select_related("team").get(
        pk=model_id, team__memberships__user=user
    )

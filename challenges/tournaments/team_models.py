"""Teams' tournament models: the pickled model a team uploads runs at once (on the open
round and the validation data) and on every round from the next one on; the team may
choose which of its models is current."""

from __future__ import annotations

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import NOT_TAKING_PART, require_participation, require_team_member
from challenges.models import ChallengeParticipation, ChallengePhase, TournamentModel
from challenges.services.storage import delete_quietly, store_stream
from challenges.services.submissions.errors import check_approved
from challenges.tournaments.core import TournamentRefused, tournament_of
from challenges.tournaments.model_runs import model_runs_queue
from challenges.tournaments.runtimes import runtime_choose

MODEL_SUFFIXES = (".pkl", ".pickle", ".cloudpickle", ".joblib")


def tournament_model_upload(
    *,
    user,
    phase: ChallengePhase,
    participation: ChallengeParticipation | None,
    upload: UploadedFile,
    make_current: bool = False,
    python_version: str | None = None,
) -> TournamentModel:
    """A team's new model, pickled under Python `python_version` (default: the newest
    offered). It runs at once on the open round and the validation data (model_runs), and
    on every round from the next one on."""
    tournament_of(phase)
    python_version = runtime_choose(python_version)
    require_participation(participation, NOT_TAKING_PART)
    check_approved(phase.challenge, refusal=TournamentRefused)
    name = upload.name or "model.pkl"
    if not name.lower().endswith(MODEL_SUFFIXES):
        raise TournamentRefused(
            _("A model is a pickled file (%(names)s); %(name)s is not.")
            % {"names": ", ".join(MODEL_SUFFIXES), "name": repr(name)},
            field="file",
        )
    if not upload.size:
        raise TournamentRefused(_("The model file is empty."), field="file")
    team_id = participation.team_id
    folder = f"tournament-models/{phase.challenge_id}/{phase.pk}/{team_id}"
    path, sha, size = store_stream(folder=folder, name=name, stream=upload)
    try:
        with transaction.atomic():
            if make_current:
                TournamentModel.objects.filter(phase=phase, team_id=team_id).update(
                    is_current=False
                )
            model = TournamentModel.objects.create(
                phase=phase,
                team_id=team_id,
                uploaded_by=user,
                file=path,
                file_name=name[:255],
                sha256=sha,
                size=size,
                is_current=make_current,
                python_version=python_version,
                enqueued_at=timezone.now(),
            )
            model_runs_queue(model)
    except BaseException:
        delete_quietly([path])
        raise
    return model


def tournament_model_mark_current(*, user, model: TournamentModel) -> TournamentModel:
    require_team_member(
        user, model.team, _("Only members of the team can choose its current model.")
    )
    with transaction.atomic():
        TournamentModel.objects.filter(phase_id=model.phase_id, team_id=model.team_id).update(
            is_current=False
        )
        TournamentModel.objects.filter(pk=model.pk).update(is_current=True)
    model.is_current = True
    return model

"""Tournament rounds: the host opens one on new live features (every team's model runs
on them) and uploads its targets once it closes (every valid submission is scored)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import IO

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import require_challenge_host
from challenges.models import (
    ChallengeParticipation,
    ChallengePhase,
    Round,
    RoundSubmission,
    TournamentModel,
)
from challenges.services import state_machine
from challenges.services.storage import delete_quietly, store_stream
from challenges.services.submissions.errors import check_approved, reader_time
from challenges.services.webhooks import round_notify_teams
from challenges.tournaments import core
from challenges.tournaments.core import (
    RUN_TASK,
    SCORE_TASK,
    TRANSITIONS,
    VALID,
    Source,
    Status,
    TournamentRefused,
    tournament_of,
)
from challenges.tournaments.predictions import InvalidRoundPredictions, live_feature_ids

log = logging.getLogger(__name__)


def round_open(
    *,
    user,
    phase: ChallengePhase,
    live_features: IO[bytes],
    data_version: str = "",
    closes_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Round:
    """Open the phase's next round on new live features: tell every team's webhooks and
    queue one model run per team that has a model in the phase. `user` None: the beat
    schedule opening rounds from a folder."""
    if user is not None:
        require_challenge_host(user, phase.challenge, _("open a round"))
    tournament = tournament_of(phase)
    # Opening runs participants' models and, later, the host's unreviewed script.
    check_approved(phase.challenge, opens="rounds", refusal=TournamentRefused)
    now = now or timezone.now()
    closes_at = closes_at or now + dt.timedelta(hours=tournament.round_hours)
    if closes_at <= now:
        raise TournamentRefused(_("The round's close time must be in the future."))
    try:
        ids = live_feature_ids(live_features)
        live_features.seek(0)
    except (InvalidRoundPredictions, UnicodeDecodeError) as exc:
        raise TournamentRefused(
            _("The live features are not a readable CSV file: %(exc)s") % {"exc": exc}
        ) from None
    if not ids:
        raise TournamentRefused(_("The live features file has no rows."))
    folder = f"rounds/{phase.challenge_id}/{phase.pk}/{uuid.uuid4().hex[:12]}"
    path, sha, _size = store_stream(folder=folder, name="live_features.csv", stream=live_features)
    try:
        with transaction.atomic():
            # One new number at a time per phase.
            ChallengePhase.objects.select_for_update().filter(pk=phase.pk).first()
            still_open = phase.rounds.filter(closes_at__gt=now).order_by("-number").first()
            if still_open is not None:
                raise TournamentRefused(
                    _(
                        "Round %(number)s is open until %(closes_at)s; open the next one after it closes."
                    )
                    % {
                        "number": still_open.number,
                        "closes_at": reader_time(still_open.closes_at),
                    }
                )
            number = (phase.rounds.aggregate(n=Max("number"))["n"] or 0) + 1
            opened = Round.objects.create(
                phase=phase,
                number=number,
                data_version=(data_version or str(number))[:100],
                opened_at=now,
                opened_by=user,
                closes_at=closes_at,
                live_features=path,
                live_features_sha256=sha,
            )
            round_notify_teams(opened=opened)
            runs = _queue_model_runs(opened, now)
    except BaseException:
        delete_quietly([path])
        raise
    log.info("round %s of phase %s opened: %s model runs", number, phase.pk, runs)
    return opened


def _queue_model_runs(opened: Round, now: dt.datetime) -> int:
    phase = opened.phase
    # A banned team's model does not run: it would not be ranked.
    teams = ChallengeParticipation.objects.filter(
        challenge_id=phase.challenge_id, is_banned=False
    ).values("team_id")
    latest: dict[int, TournamentModel] = {}
    # Newest first: the first seen per team is its latest; a marked one wins.
    for model in TournamentModel.objects.filter(phase=phase, team_id__in=teams):
        if model.team_id not in latest or (
            model.is_current and not latest[model.team_id].is_current
        ):
            latest[model.team_id] = model
    runs = RoundSubmission.objects.bulk_create(
        [
            RoundSubmission(
                round=opened,
                team_id=team_id,
                source=Source.MODEL,
                model=model,
                submitted_at=now,
                status=Status.QUEUED,
                enqueued_at=now,
            )
            for team_id, model in latest.items()
        ]
    )
    ids = [run.pk for run in runs]
    queue = phase.challenge.queue
    transaction.on_commit(lambda: [core.send(RUN_TASK, pk, challenge_queue=queue) for pk in ids])
    return len(ids)


def round_current(*, phase: ChallengePhase, now: dt.datetime | None = None) -> Round | None:
    """The open round: opened, not yet closed."""
    now = now or timezone.now()
    return (
        phase.rounds.filter(opened_at__lte=now, closes_at__gt=now)
        .exclude(live_features="")
        .order_by("-number")
        .first()
    )


def round_targets_upload(
    *, user, round: Round, targets: IO[bytes], now: dt.datetime | None = None
) -> int:
    """The round's targets arrive (again): every valid submission of the round is scored
    against them. Returns how many were queued for scoring."""
    if user is not None:
        require_challenge_host(user, round.phase.challenge, _("upload a round's targets"))
    tournament_of(round.phase)
    now = now or timezone.now()
    if round.closes_at and now < round.closes_at:
        raise TournamentRefused(
            _("Round %(number)s is open until %(closes_at)s; upload its targets after it closes.")
            % {"number": round.number, "closes_at": reader_time(round.closes_at)}
        )
    folder = f"rounds/{round.phase.challenge_id}/{round.phase_id}/{uuid.uuid4().hex[:12]}"
    path, sha, _size = store_stream(folder=folder, name="targets.csv", stream=targets)
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round.pk)
        old = locked.targets.name
        version = locked.targets_version + 1
        Round.objects.filter(pk=round.pk).update(
            targets=path, targets_sha256=sha, targets_version=version, resolved_at=now
        )
        # Stale scores (older targets) and scoring failures are scored again; a model run
        # still predicting goes to scoring when it ends (round_run_record).
        rescore = RoundSubmission.objects.filter(round=round).filter(
            Q(status__in=VALID) | Q(status=Status.FAILED, failure_kind="scoring")
        )
        ids = list(rescore.values_list("pk", flat=True))
        state_machine.transition_many(
            RoundSubmission,
            TRANSITIONS,
            pks=ids,
            step="rescore",
            to=Status.SCORING,
            targets_version=version,
            enqueued_at=now,
            failure_kind="",
            failure_message="",
        )
        queue = round.phase.challenge.queue
        transaction.on_commit(
            lambda: [core.send(SCORE_TASK, pk, version, challenge_queue=queue) for pk in ids]
        )
    if old:
        transaction.on_commit(lambda: delete_quietly([old]))
    round.refresh_from_db()
    return len(ids)

"""Bots' round submissions: predictions uploaded for the open round, checked at once and
refused after the close; and a team's round submissions, newest first."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import NOT_TAKING_PART, require_not_banned, require_participation
from challenges.models import (
    ChallengeParticipation,
    ChallengePhase,
    ParticipantTeam,
    Round,
    RoundSubmission,
)
from challenges.services.storage import delete_quietly, open_stored, store_stream
from challenges.services.submissions import max_upload_bytes
from challenges.services.submissions.errors import reader_time
from challenges.tournaments.core import (
    RoundClosed,
    Source,
    Status,
    TournamentRefused,
    tournament_of,
)
from challenges.tournaments.predictions import (
    InvalidRoundPredictions,
    check_round_predictions,
    live_feature_ids,
)


def round_submission_create(
    *,
    user,
    round: Round,
    participation: ChallengeParticipation | None,
    upload: UploadedFile,
    now: dt.datetime | None = None,
) -> RoundSubmission:
    """A bot's predictions for a round, checked at once; refused (409) after the close."""
    now = now or timezone.now()
    require_participation(participation, NOT_TAKING_PART)
    tournament_of(round.phase)
    require_not_banned(participation)
    if round.closes_at is None or now >= round.closes_at:
        closed = round.closes_at or round.opened_at
        raise RoundClosed(
            _("Round %(number)s closed at %(closed)s; submit to the current round instead.")
            % {"number": round.number, "closed": reader_time(closed)},
            closes_at=closed,
        )
    if now < round.opened_at:
        raise TournamentRefused(
            _("Round %(number)s has not opened yet.") % {"number": round.number}
        )
    limit = max_upload_bytes(round.phase)
    if upload.size is not None and upload.size > limit:
        raise TournamentRefused(
            _("The file is %(size)s bytes; this phase accepts at most %(limit)s.")
            % {"size": upload.size, "limit": limit},
            field="file",
        )
    _check_upload_count(round, participation.team_id)
    with open_stored(round.live_features.name) as features:
        ids = live_feature_ids(features)
    try:
        upload.seek(0)
        rows = check_round_predictions(upload, ids=ids)
        upload.seek(0)
    except InvalidRoundPredictions as exc:
        raise TournamentRefused(str(exc), field="file") from None
    folder = f"round-predictions/{round.phase.challenge_id}/{round.pk}/{participation.team_id}"
    path, sha, _size = store_stream(folder=folder, name="predictions.csv", stream=upload)
    try:
        with transaction.atomic():
            # The row lock serialises a team's concurrent uploads: the count and the insert
            # cannot interleave with another request's (as for submission quotas).
            ChallengeParticipation.objects.select_for_update().get(pk=participation.pk)
            _check_upload_count(round, participation.team_id)
            return RoundSubmission.objects.create(
                round=round,
                team_id=participation.team_id,
                source=Source.FILE,
                created_by=user,
                submitted_at=now,
                status=Status.PENDING,
                predictions=path,
                predictions_sha256=sha,
                rows=rows,
            )
    except BaseException:
        delete_quietly([path])
        raise


def _check_upload_count(round: Round, team_id: int) -> None:
    uploads = RoundSubmission.objects.filter(round=round, team_id=team_id, source=Source.FILE)
    if uploads.count() >= settings.TOURNAMENT_MAX_UPLOADS_PER_ROUND:
        # Every upload is kept (and scored): a runaway bot must not fill the storage.
        raise TournamentRefused(
            _(
                "Your team has uploaded %(limit)s prediction files to round %(number)s, the most allowed; the last one counts."
            )
            % {
                "limit": settings.TOURNAMENT_MAX_UPLOADS_PER_ROUND,
                "number": round.number,
            },
            field="file",
        )


def team_round_submissions(*, phase: ChallengePhase, team: ParticipantTeam):
    """A team's round submissions in a phase, newest first (its page and API)."""
    return (
        RoundSubmission.objects.filter(round__phase=phase, team=team)
        .select_related("round")
        .order_by("-round__number", "-submitted_at", "-pk")
    )

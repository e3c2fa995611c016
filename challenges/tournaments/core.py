"""Live tournaments (DESIGN section 10), what every tournament service shares: the round
submissions' state machine, the refusals, and sending work to the rounds queue.

Round submissions move through a table of allowed transitions (TRANSITIONS), each one a
conditional update that must change exactly one row: a worker, the sweeper or a new
upload of targets may have got there first, and then the caller does nothing.

    queued -> predicting -> pending -> scoring -> scored
                         \\-> failed             \\-> failed (scoring)
    (file uploads start as pending; new targets move pending/scored/failed-at-scoring
     back to scoring)

Model runs and scoring go to their own Celery queue (`<challenge queue>-rounds`), which every
worker consumes next to the default one; Redis hands out the two queues in turn, so a
round of 200 models does not starve ordinary submissions.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import current_app
from django.db.models import Q
from django.utils.translation import gettext as _

from challenges.models import ChallengePhase, RoundSubmission, Tournament
from challenges.services import state_machine
from challenges.services.queues import rounds_queue
from challenges.services.submissions import SubmissionRefused

log = logging.getLogger(__name__)

RUN_TASK = "workers.run_round_model"
SCORE_TASK = "workers.score_round_submission"
Status = RoundSubmission.Status
Source = RoundSubmission.Source

# The state machine: which statuses each step may start from.
TRANSITIONS: state_machine.Table = {
    ("claim", Status.PREDICTING): (Status.QUEUED,),
    ("predicted", Status.PENDING): (Status.PREDICTING,),
    ("predicted", Status.SCORING): (Status.PREDICTING,),
    ("predicted", Status.FAILED): (Status.PREDICTING,),
    ("requeue", Status.QUEUED): (Status.PREDICTING,),
    ("scored", Status.SCORED): (Status.SCORING,),
    ("scored", Status.FAILED): (Status.SCORING,),
    # New targets: valid predictions and scoring failures are scored (again).
    ("rescore", Status.SCORING): (Status.PENDING, Status.SCORING, Status.SCORED, Status.FAILED),
}
# Predictions in these states are valid; the newest of a team's counts for the round.
VALID = (Status.PENDING, Status.SCORING, Status.SCORED)


class TournamentRefused(SubmissionRefused):
    """A round or model operation is not possible now; the message says why."""


class RoundClosed(TournamentRefused):
    status_code = 409

    def __init__(self, message: str, *, closes_at: dt.datetime):
        super().__init__(message, field="round")
        self.closes_at = closes_at


def round_submission_transition(
    *, submission_id: int, step: str, to: str, extra: Q | None = None, **fields
) -> bool:
    """Move one round submission along TRANSITIONS; True when this caller moved it."""
    return state_machine.transition(
        RoundSubmission, TRANSITIONS, pk=submission_id, step=step, to=to, extra=extra, **fields
    )


def tournament_of(phase: ChallengePhase) -> Tournament:
    tournament = Tournament.objects.filter(phase=phase).first()
    if tournament is None:
        raise TournamentRefused(
            _("Phase %(codename)s is not a tournament phase.") % {"codename": repr(phase.codename)}
        )
    return tournament


def send(task: str, *args, challenge_queue: str | None = None) -> None:
    """`args[0]` is the round submission; its challenge's queue (`challenge_queue`, read
    when not given: callers sending many of one challenge give it) names the queue."""
    try:
        if challenge_queue is None:
            challenge_queue = (
                RoundSubmission.objects.filter(pk=args[0])
                .values_list("round__phase__challenge__queue", flat=True)
                .first()
            )
        current_app.send_task(task, args=list(args), queue=rounds_queue(challenge_queue or ""))
    except Exception as exc:  # the broker is down: the sweeper sends it again
        log.warning("could not enqueue %s%s: %s", task, args, exc)

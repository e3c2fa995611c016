"""Live tournaments (DESIGN section 10), by concern:

    core                what the services share: the round submissions' state machine,
                        the refusals, sending work to the rounds queue
    rounds              opening a round, its targets arriving
    team_models         teams' models
    round_submissions   bots' predictions for a round, a team's round submissions
    runs                what workers report: model runs and scores
    recovery            the sweeper and a restarted worker's lost runs
    folders             rounds opened from a folder on a schedule
    access              access_* for tournaments, rounds and models
    round_leaderboards  per-round and cumulative leaderboards (reads)
    metrics             the ranking metrics (pure)
    predictions         reading live features and checking prediction files (pure)
    admin               Django admin, registered from challenges.admin

The services' names are re-exported here: `from challenges import tournaments`.
"""

from challenges.access import AccessDenied
from challenges.tournaments.core import (
    RUN_TASK,
    SCORE_TASK,
    TRANSITIONS,
    VALID,
    RoundClosed,
    TournamentRefused,
    round_submission_transition,
    tournament_of,
)
from challenges.tournaments.recovery import (
    TournamentSweep,
    round_runs_recover_worker,
    tournaments_sweep,
)
from challenges.tournaments.round_submissions import (
    round_submission_create,
    team_round_submissions,
)
from challenges.tournaments.rounds import round_current, round_open, round_targets_upload
from challenges.tournaments.runs import (
    RunRecord,
    round_run_claim,
    round_run_record,
    round_score_record,
)
from challenges.tournaments.team_models import (
    MODEL_SUFFIXES,
    tournament_model_mark_current,
    tournament_model_upload,
)

__all__ = [
    "MODEL_SUFFIXES",
    "RUN_TASK",
    "SCORE_TASK",
    "TRANSITIONS",
    "VALID",
    "AccessDenied",
    "RoundClosed",
    "RunRecord",
    "TournamentRefused",
    "TournamentSweep",
    "round_current",
    "round_open",
    "round_run_claim",
    "round_run_record",
    "round_runs_recover_worker",
    "round_score_record",
    "round_submission_create",
    "round_submission_transition",
    "round_targets_upload",
    "team_round_submissions",
    "tournament_model_mark_current",
    "tournament_model_upload",
    "tournament_of",
    "tournaments_sweep",
]

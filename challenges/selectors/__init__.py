"""Non-trivial reads: querysets with their joins already applied, and the leaderboards as
pages show them. Writes live in `challenges.services`.

    participation  whose team takes part, the host team's row, a user's teams
    leaderboards   ranked, paged leaderboard rows (the writer is services.leaderboard_refresh)
"""

from challenges.selectors.participation import (
    host_team_participation,
    participation_for_user,
    team_merges_of,
    teams_of_user,
    teams_taking_part,
)

__all__ = [
    "host_team_participation",
    "participation_for_user",
    "team_merges_of",
    "teams_of_user",
    "teams_taking_part",
]

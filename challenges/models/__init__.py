from challenges.models.audit import AuditEvent
from challenges.models.challenge import (
    Challenge,
    ChallengePhase,
    ChallengePhaseSplit,
    DatasetSplit,
    EvaluationScript,
    HostTeam,
    HostTeamMember,
    Leaderboard,
)
from challenges.models.identity import BreakGlassAdmin, ExternalIdentity
from challenges.models.leaderboard import LeaderboardEntry
from challenges.models.participation import (
    ChallengeParticipation,
    ParticipantTeam,
    ParticipantTeamMember,
    TeamMerge,
)
from challenges.models.profile import UserProfile
from challenges.models.submission import Submission, SubmissionResult
from challenges.models.tournaments import RoundSubmission, Tournament, TournamentModel
from challenges.models.uploads import ResumableUpload
from challenges.models.webhooks import Round, Webhook, WebhookDelivery

__all__ = [
    "AuditEvent",
    "BreakGlassAdmin",
    "Challenge",
    "ChallengeParticipation",
    "ChallengePhase",
    "ChallengePhaseSplit",
    "DatasetSplit",
    "EvaluationScript",
    "ExternalIdentity",
    "HostTeam",
    "HostTeamMember",
    "Leaderboard",
    "LeaderboardEntry",
    "ParticipantTeam",
    "ParticipantTeamMember",
    "ResumableUpload",
    "Round",
    "RoundSubmission",
    "Submission",
    "SubmissionResult",
    "TeamMerge",
    "Tournament",
    "TournamentModel",
    "UserProfile",
    "Webhook",
    "WebhookDelivery",
]

"""EvalAI's REST paths, mounted at /api/ beside our /api/v1/ (docs/evalai.md).

EvalAI's clients call some paths with and some without a trailing slash; every route
here takes both, so no request depends on APPEND_SLASH redirects (which lose POST bodies).
"""

from __future__ import annotations

from django.urls import re_path

from challenges.api.evalai import accounts, challenges, jobs, remote, teams
from challenges.ids import ID_PATTERN

S = "/?$"  # an optional trailing slash
ID = ID_PATTERN  # at most 18 digits (challenges.ids)

urlpatterns = [
    # `evalai login`
    re_path(rf"^auth/login{S}", accounts.login, name="evalai-login"),
    re_path(
        rf"^accounts/user/get_auth_token{S}",
        accounts.AuthToken.as_view(),
        name="evalai-auth-token",
    ),
    # apps/challenges
    re_path(
        rf"^challenges/challenge/(?P<time>[A-Za-z]+)/(?P<approved>[A-Za-z]+)/(?P<published>[A-Za-z]+){S}",
        challenges.ChallengeList.as_view(),
        name="evalai-challenge-list",
    ),
    re_path(
        rf"^challenges/challenge/(?P<challenge_pk>{ID})/challenge_phase{S}",
        challenges.PhaseList.as_view(),
        name="evalai-phase-list",
    ),
    re_path(
        rf"^challenges/challenge/(?P<challenge_pk>{ID})/challenge_phase/(?P<pk>{ID}){S}",
        challenges.PhaseDetail.as_view(),
        name="evalai-phase-detail",
    ),
    re_path(
        rf"^challenges/challenge/(?P<challenge_pk>{ID})/participant_team/(?P<team_pk>{ID}){S}",
        challenges.Participate.as_view(),
        name="evalai-participate",
    ),
    re_path(
        rf"^challenges/challenge/phase/(?P<pk>{ID}){S}",
        challenges.PhaseByPk.as_view(),
        name="evalai-phase-by-pk",
    ),
    re_path(
        rf"^challenges/challenge/(?P<challenge_pk>{ID}){S}",
        challenges.ChallengeDetail.as_view(),
        name="evalai-challenge-detail",
    ),
    re_path(
        rf"^challenges/challenge/(?P<time>[A-Za-z]+){S}",
        challenges.ChallengeList.as_view(),
        name="evalai-challenge-list-by-time",
    ),
    re_path(
        rf"^challenges/(?P<challenge_pk>{ID})/challenge_phase_split{S}",
        challenges.PhaseSplitList.as_view(),
        name="evalai-phase-split-list",
    ),
    re_path(
        rf"^challenges/challenge_host_team/(?P<team_pk>{ID})/challenge{S}",
        challenges.HostTeamChallenges.as_view(),
        name="evalai-host-team-challenges",
    ),
    # apps/participants
    re_path(
        rf"^participants/participant_team{S}",
        teams.ParticipantTeams.as_view(),
        name="evalai-participant-teams",
    ),
    re_path(
        rf"^participants/participant_team/(?P<team_pk>{ID})/invite{S}",
        teams.ParticipantTeamInvite.as_view(),
        name="evalai-participant-team-invite",
    ),
    re_path(
        rf"^participants/participant_team/(?P<team_pk>{ID})/challenge{S}",
        teams.ParticipantTeamChallenges.as_view(),
        name="evalai-participant-team-challenges",
    ),
    # apps/hosts
    re_path(rf"^hosts/challenge_host_team{S}", teams.HostTeams.as_view(), name="evalai-host-teams"),
    re_path(
        rf"^hosts/create_challenge_host_team{S}",
        teams.HostTeamCreate.as_view(),
        name="evalai-host-team-create",
    ),
    # apps/jobs
    re_path(
        rf"^jobs/challenge/(?P<challenge_pk>{ID})/challenge_phase/(?P<phase_pk>{ID})/submission{S}",
        jobs.PhaseSubmissions.as_view(),
        name="evalai-phase-submissions",
    ),
    re_path(
        rf"^jobs/submission/(?P<pk>{ID}){S}",
        jobs.SubmissionDetail.as_view(),
        name="evalai-submission",
    ),
    re_path(
        r"^jobs/files/(?P<token>[^/]+)/(?P<name>[^/]+)$",
        jobs.SubmissionFile.as_view(),
        name="evalai-submission-file",
    ),
    re_path(
        rf"^jobs/challenge_phase_split/(?P<split_pk>{ID})/leaderboard{S}",
        jobs.Leaderboard.as_view(),
        name="evalai-leaderboard",
    ),
    # `submit --large`
    re_path(
        rf"^jobs/phases/(?P<phase_pk>{ID})/get_submission_file_presigned_url{S}",
        jobs.LargeUploadStart.as_view(),
        name="evalai-large-upload-start",
    ),
    re_path(
        rf"^jobs/uploads/(?P<upload_id>[^/]+)/(?P<number>{ID})/?$",
        jobs.LargeUploadPart.as_view(),
        name="evalai-large-upload-part",
    ),
    re_path(
        rf"^jobs/phases/(?P<phase_pk>{ID})/finish_submission_file_upload/(?P<submission_pk>{ID}){S}",
        jobs.LargeUploadFinish.as_view(),
        name="evalai-large-upload-finish",
    ),
    re_path(
        rf"^jobs/phases/(?P<phase_pk>{ID})/send_submission_message/(?P<submission_pk>{ID}){S}",
        jobs.SendSubmissionMessage.as_view(),
        name="evalai-send-submission-message",
    ),
    # remote evaluation
    re_path(
        rf"^jobs/challenge/queues/(?P<queue_name>[\w-]+){S}",
        remote.QueueReceive.as_view(),
        name="evalai-queue-receive",
    ),
    re_path(
        rf"^jobs/queues/(?P<queue_name>[\w-]+){S}",
        remote.QueueDelete.as_view(),
        name="evalai-queue-delete",
    ),
    re_path(
        rf"^jobs/challenge/(?P<challenge_pk>{ID})/update_submission{S}",
        remote.UpdateSubmission.as_view(),
        name="evalai-update-submission",
    ),
]

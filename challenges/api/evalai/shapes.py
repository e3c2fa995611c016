"""Our rows in the JSON shapes EvalAI answers (Cloud-CV/EvalAI's serializers), field for
field where its clients read them. Callers have already decided what the reader may see."""

from __future__ import annotations

import datetime as dt
from typing import Any

from challenges.api.evalai.base import evalai_date, file_link
from challenges.failure_text import participant_failure_text
from challenges.html_safe import sanitize_html
from challenges.leaderboard_rules import labels_of
from challenges.models import (
    Challenge,
    ChallengePhase,
    ChallengePhaseSplit,
    HostTeam,
    ParticipantTeam,
    Submission,
)
from challenges.submission_access import SubmissionView

# Ours -> EvalAI's. `queued` is EvalAI's `submitted` (waiting for a worker); a code
# submission's model run and check are part of EvalAI's `running`.
STATUS = {
    Submission.Status.SUBMITTED: "submitted",
    Submission.Status.QUEUED: "submitted",
    Submission.Status.PREDICTING: "running",
    Submission.Status.VALIDATING: "running",
    Submission.Status.RUNNING: "running",
    Submission.Status.FINISHED: "finished",
    Submission.Status.PARTIALLY_EVALUATED: "partially_evaluated",
    Submission.Status.FAILED: "failed",
    Submission.Status.CANCELLED: "cancelled",
}


def host_team(team: HostTeam, *, members: bool = True) -> dict[str, Any]:
    data = {
        "id": team.pk,
        "team_name": team.name,
        "created_by": team.created_by.username,
        "team_url": "",
    }
    if members:
        data["members"] = [
            {
                "id": m.pk,
                "user": m.user.username,
                "status": "Self",
                "permissions": "Admin" if m.role == m.Role.ADMIN else "Write",
            }
            for m in team.memberships.all()
        ]
    return data


def challenge(c: Challenge, *, queue: str | None = None) -> dict[str, Any]:
    data = {
        "id": c.pk,
        "title": c.title,
        "short_description": c.short_description,
        "description": sanitize_html(c.description),
        "terms_and_conditions": sanitize_html(c.terms_and_conditions),
        "submission_guidelines": sanitize_html(c.submission_guidelines),
        "evaluation_details": sanitize_html(c.evaluation_details),
        "image": None,
        # EvalAI always has a start date; ours is optional (open from creation).
        "start_date": evalai_date(c.start_date or c.created_at),
        "end_date": evalai_date(c.end_date),
        "creator": host_team(c.host_team, members=False),
        "domain": c.domain or None,
        "domain_name": c.domain or None,
        "list_tags": list(c.tags or []),
        "has_prize": bool(c.prizes),
        "has_sponsors": bool(c.sponsors),
        "published": c.published,
        "approved_by_admin": c.approved_by_admin,
        "is_registration_open": c.is_registration_open,
        "enable_forum": False,
        "forum_url": None,
        "leaderboard_description": sanitize_html(c.leaderboard_description),
        "anonymous_leaderboard": c.anonymous_leaderboard,
        "manual_participant_approval": False,
        "is_active": c.is_active,
        "allowed_email_domains": list(c.allowed_email_domains or []),
        "blocked_email_domains": list(c.blocked_email_domains or []),
        "banned_email_ids": [],
        "remote_evaluation": c.remote_evaluation,
        "is_docker_based": False,
        "is_static_dataset_code_upload": False,
        "slug": f"{c.pk}",
        "max_team_members": c.max_team_members,
        "created_at": evalai_date(c.created_at),
    }
    if queue is not None:
        # Hosts only: what their remote-evaluation worker polls.
        data["queue"] = queue
    return data


def _meta_attributes(definitions: list) -> list[dict[str, Any]]:
    # EvalAI's CLI reads name, type, description, required and options of each.
    rows = []
    for d in definitions or []:
        if not isinstance(d, dict):
            continue
        row = {
            "name": d.get("name", ""),
            "type": d.get("type", "text"),
            "description": d.get("description", ""),
            "required": str(d.get("required", False)).lower() == "true",
        }
        if "options" in d:
            row["options"] = [str(o) for o in d.get("options") or []]
        rows.append(row)
    return rows


def phase(p: ChallengePhase, *, is_host: bool = False) -> dict[str, Any]:
    c = p.challenge
    data = {
        "id": p.pk,
        "name": p.name,
        "description": sanitize_html(p.description),
        "leaderboard_public": p.leaderboard_public,
        "start_date": evalai_date(p.start_date or c.start_date or c.created_at),
        "end_date": evalai_date(p.end_date or c.end_date),
        "challenge": c.pk,
        "is_public": p.is_public,
        "is_active": p.is_open,
        "codename": p.codename,
        "slug": f"{p.codename}-{p.pk}",
        "max_submissions_per_day": p.max_submissions_per_day,
        "max_submissions_per_month": p.max_submissions_per_month,
        "max_submissions": p.max_submissions,
        "max_concurrent_submissions_allowed": p.max_concurrent_submissions_allowed,
        "is_restricted_to_select_one_submission": p.is_restricted_to_select_one_submission,
        "is_partial_submission_evaluation_enabled": p.is_partial_submission_evaluation_enabled,
        "allowed_submission_file_types": ", ".join(p.allowed_submission_file_types or []),
        "default_submission_meta_attributes": p.default_submission_meta_attributes or [],
        "submission_meta_attributes": _meta_attributes(p.submission_meta_attributes),
        "disable_logs": p.disable_logs,
        "is_submission_public": p.is_submission_public,
        "submission_type": p.submission_type,
    }
    if is_host:
        data["allowed_email_ids"] = list(p.allowed_email_ids or [])
    return data


def phase_split(ps: ChallengePhaseSplit) -> dict[str, Any]:
    return {
        "id": ps.pk,
        "challenge_phase": ps.phase_id,
        "challenge_phase_name": ps.phase.name,
        "dataset_split": ps.dataset_split_id,
        "dataset_split_name": ps.dataset_split.name,
        "dataset_split_codename": ps.dataset_split.codename,
        "visibility": ps.visibility,
        "show_leaderboard_by_latest_submission": ps.show_leaderboard_by_latest_submission,
        "show_execution_time": ps.show_execution_time,
        "leaderboard_decimal_precision": ps.leaderboard_decimal_precision,
        "is_leaderboard_order_descending": ps.is_leaderboard_order_descending,
    }


def participant_team(team: ParticipantTeam) -> dict[str, Any]:
    """A team as its members see it (teams_of_user prefetches the members)."""
    return {
        "id": team.pk,
        "team_name": team.name,
        "created_by": team.created_by.username,
        "team_url": "",
        "members": [
            {"member_name": u.username, "status": "Self", "member_id": u.pk}
            for u in team.members.all()
        ],
    }


def _execution_time(s: Submission) -> float | None:
    if s.wall_time_s is not None:
        return round(s.wall_time_s, 4)
    if s.started_at and s.finished_at:
        return round((s.finished_at - s.started_at).total_seconds(), 4)
    return None


def submission(view: SubmissionView, request) -> dict[str, Any]:
    """EvalAI's SubmissionSerializer. Its file fields are links: the input, the logs (if
    the reader may see them) and, once evaluated, a JSON of the results the reader may see."""
    s = view.submission
    ended = s.status in Submission.RANKED

    def link(kind: str, name: str) -> str:
        return file_link(
            request, submission_id=s.pk, kind=kind, name=name, a=s.attempt, h=view.is_host
        )

    logs = view.can_see_logs and s.is_final_state
    return {
        "id": s.pk,
        "participant_team": s.team_id,
        "participant_team_name": s.team.name,
        "execution_time": _execution_time(s),
        "challenge_phase": s.phase_id,
        "created_by": s.created_by.username,
        "status": STATUS.get(s.status, s.status),
        "input_file": link("input", s.file_name),
        "submission_input_file": None,
        "stdout_file": link("stdout", "stdout.txt") if logs else None,
        "stderr_file": link("stderr", "stderr.txt") if logs else None,
        "submission_result_file": link("result", "result.json") if ended else None,
        "submission_metadata_file": None,
        "started_at": evalai_date(s.started_at),
        "completed_at": evalai_date(s.finished_at),
        "submitted_at": evalai_date(s.submitted_at),
        "method_name": s.method_name,
        "method_description": s.method_description,
        "project_url": s.project_url,
        "publication_url": s.publication_url,
        "is_public": s.is_public,
        "is_flagged": False,
        "ignore_submission": False,
        "when_made_public": None,
        "is_baseline": s.is_baseline,
        "job_name": [],
        "submission_metadata": s.meta_attributes or None,
        "is_verified_by_host": False,
        # Ours, for a failed submission: what the reader may read of the failure (hosts
        # all of it; the team the summary written for it).
        "failure_message": (
            s.failure_message if view.is_host else participant_failure_text(s.failure_message)
        ),
    }


def leaderboard_row(
    row: dict[str, Any], split: ChallengePhaseSplit, order_index: int = 0
) -> dict[str, Any]:
    """One row of `challenges.selectors.leaderboards.leaderboard_page` as EvalAI's LeaderboardData
    values; hidden names and ids stay hidden (None)."""
    labels = labels_of(split.leaderboard.schema)
    submitted = dt.datetime.fromisoformat(row["submitted_at"])
    scores = row["scores"]
    return {
        "id": row.get("submission_id"),
        "submission__participant_team": row.get("team_id"),
        "submission__participant_team__team_name": row["team"] or "Anonymous",
        "submission__participant_team__team_url": "",
        "submission__is_baseline": row["is_baseline"],
        "submission__is_public": True,
        "challenge_phase_split": split.pk,
        "result": scores,
        "filtering_score": scores[order_index] if len(scores) > order_index else None,
        "leaderboard__schema": {**split.leaderboard.schema, "labels": labels},
        "submission__submitted_at": evalai_date(submitted),
        "submission__method_name": row.get("method_name", ""),
        "submission__id": row.get("submission_id"),
        "submission__submission_metadata": None,
        "submission__execution_time": row.get("execution_time_s"),
        "error": None,
        "filtering_error": 0,
        "rank": row["rank"],
    }

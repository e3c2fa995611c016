"""Quotas per team and phase (day, month, total, concurrent, failed per day) and the
team's stored bytes per challenge: what intake checks under the participation lock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import ngettext

from challenges.models import ChallengePhase, Submission
from challenges.prepared import Prepared
from challenges.services.submissions.errors import QuotaExceeded, StorageExceeded

Status = Submission.Status

# ---------------------------------------------------------------- quotas


@dataclass
class QuotaState:
    quota: str
    limit: int
    used: int
    resets_at: dt.datetime | None

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "quota": self.quota,
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
        }


def _day_and_month_start(
    now: dt.datetime,
) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    return day, day + dt.timedelta(days=1), month, next_month


def _counts(rows: QuerySet[Submission], *, phase_id: int, now: dt.datetime) -> dict[str, int]:
    """What the quotas count of phase `phase_id` among `rows` (a team's submissions), and
    `stored`: the bytes of all of `rows` whose file is still stored.

    Read as a row per phase and status, tallied here: six filtered aggregates cost Django
    about three times as much to compile as the query costs to run, on every upload."""
    day, _, month, _ = _day_and_month_start(now)
    return _tally(_grouped(rows, day=day, month=month), phase_id=phase_id)


def _grouped(rows: QuerySet[Submission], *, day: dt.datetime, month: dt.datetime):
    return (
        rows.order_by()
        .values_list("phase_id", "status")
        .annotate(
            n=Count("pk"),
            today=Count("pk", filter=Q(submitted_at__gte=day)),
            month=Count("pk", filter=Q(submitted_at__gte=month)),
            stored=Sum("input_size", filter=Q(input_purged_at__isnull=True)),
        )
    )


# What intake counts under the team's lock on every upload, compiled once
# (challenges.prepared): the team's rows in the whole challenge, grouped.
_TEAM_IN_CHALLENGE = Prepared(
    lambda challenge_id, team_id, day, month: _grouped(
        Submission.objects.filter(phase__challenge_id=challenge_id, team_id=team_id),
        day=day,
        month=month,
    ),
    int,
    int,
    dt.datetime,
    dt.datetime,
)


def _tally(grouped, *, phase_id: int) -> dict[str, int]:
    counts = dict.fromkeys(("total", "today", "month", "concurrent", "failed_today", "stored"), 0)
    for row_phase, status, n, today, this_month, stored in grouped:
        counts["stored"] += stored or 0
        if row_phase != phase_id:
            continue
        if status not in Submission.NOT_COUNTED:
            counts["total"] += n
            counts["today"] += today
            counts["month"] += this_month
        if status in Submission.IN_FLIGHT:
            counts["concurrent"] += n
        if status == Status.FAILED:
            counts["failed_today"] += today
    return counts


def _quota_states(phase: ChallengePhase, counts: dict[str, int], now: dt.datetime):
    _, next_day, _, next_month = _day_and_month_start(now)
    # Failed submissions use no quota (as on EvalAI and Kaggle), yet each stored a file
    # and took a worker: an operator's cap per team, phase and UTC day stops a team from
    # filling the disk with uploads it knows will fail. 0 turns it off.
    failed = []
    if settings.SUBMISSION_MAX_FAILED_PER_DAY > 0:
        failed = [
            QuotaState(
                "failed_per_day",
                settings.SUBMISSION_MAX_FAILED_PER_DAY,
                counts["failed_today"],
                next_day,
            )
        ]
    return [
        QuotaState("per_day", phase.max_submissions_per_day, counts["today"], next_day),
        QuotaState("per_month", phase.max_submissions_per_month, counts["month"], next_month),
        QuotaState("total", phase.max_submissions, counts["total"], None),
        QuotaState(
            "concurrent", phase.max_concurrent_submissions_allowed, counts["concurrent"], None
        ),
        *failed,
    ]


def quota_state(
    *, phase: ChallengePhase, team_id: int, now: dt.datetime | None = None
) -> list[QuotaState]:
    """Used and remaining submissions of a team in a phase, per quota, in one query."""
    now = now or timezone.now()
    rows = Submission.objects.filter(phase=phase, team_id=team_id)
    return _quota_states(phase, _counts(rows, phase_id=phase.pk, now=now), now)


def _quota_text(quota: str, limit: int, resets: str) -> str:
    values = {"limit": limit, "resets": resets}
    if quota == "per_day":
        text = ngettext(
            "Quota reached: the daily limit of %(limit)s submission is used up; it resets at "
            "%(resets)s.",
            "Quota reached: the daily limit of %(limit)s submissions is used up; it resets at "
            "%(resets)s.",
            limit,
        )
    elif quota == "per_month":
        text = ngettext(
            "Quota reached: the monthly limit of %(limit)s submission is used up; it resets at "
            "%(resets)s.",
            "Quota reached: the monthly limit of %(limit)s submissions is used up; it resets "
            "at %(resets)s.",
            limit,
        )
    elif quota == "total":
        text = ngettext(
            "Quota reached: the phase's limit of %(limit)s submission in total is used up.",
            "Quota reached: the phase's limit of %(limit)s submissions in total is used up.",
            limit,
        )
    elif quota == "concurrent":
        text = ngettext(
            "Quota reached: %(limit)s submission is already waiting or running, the most "
            "allowed at once; submit again when it finishes.",
            "Quota reached: %(limit)s submissions are already waiting or running, the most "
            "allowed at once; submit again when one finishes.",
            limit,
        )
    else:
        text = ngettext(
            "Quota reached: your team's submissions to this phase failed %(limit)s time today "
            "(SUBMISSION_MAX_FAILED_PER_DAY, per UTC day), the most the platform keeps; read "
            "the failures' messages, check your file locally, and submit again after "
            "%(resets)s.",
            "Quota reached: your team's submissions to this phase failed %(limit)s times today "
            "(SUBMISSION_MAX_FAILED_PER_DAY, per UTC day), the most the platform keeps; read "
            "the failures' messages, check your file locally, and submit again after "
            "%(resets)s.",
            limit,
        )
    return text % values


def _check_quotas(states: list[QuotaState]) -> None:
    for state in states:
        if state.remaining <= 0:
            # Days are counted in UTC; the reset is shown in the reader's zone, named.
            resets = (
                date_format(timezone.localtime(state.resets_at), "Y-m-d H:i T")
                if state.resets_at
                else ""
            )
            raise QuotaExceeded(
                state.quota, _quota_text(state.quota, state.limit, resets), state.resets_at
            )


# ---------------------------------------------------------------- stored bytes


def team_storage_used(*, challenge_id: int, team_id: int) -> int:
    """Bytes of the team's submission files still stored for the challenge."""
    used = Submission.objects.filter(
        phase__challenge_id=challenge_id, team_id=team_id, input_purged_at__isnull=True
    ).aggregate(total=Sum("input_size"))["total"]
    return used or 0


def team_storage_check(*, challenge_id: int, team_id: int, incoming: int | None) -> None:
    """Raise StorageExceeded when `incoming` more bytes would pass the team's cap."""
    limit = settings.SUBMISSION_TEAM_STORAGE_BYTES
    if limit <= 0:
        return
    used = team_storage_used(challenge_id=challenge_id, team_id=team_id)
    _check_storage(limit, used, incoming)


def _check_storage(limit: int, used: int, incoming: int | None) -> None:
    if used + (incoming or 0) > limit:
        raise StorageExceeded(limit=limit, used=used, incoming=incoming or 0)


def quotas_and_storage_check(
    *, phase: ChallengePhase, team_id: int, incoming: int, now: dt.datetime
) -> None:
    """`_check_quotas(quota_state(...))`, then `team_storage_check(...)`, answered by one
    query instead of two: intake asks both for every upload, under the team's lock."""
    limit = settings.SUBMISSION_TEAM_STORAGE_BYTES
    # The team's rows in the whole challenge (what its storage counts); the quotas count
    # those of the phase among them.
    day, _, month, _ = _day_and_month_start(now)
    grouped = _TEAM_IN_CHALLENGE(phase.challenge_id, team_id, day, month)
    counts = _tally(grouped, phase_id=phase.pk)
    _check_quotas(_quota_states(phase, counts, now))
    if limit > 0:
        _check_storage(limit, counts["stored"] or 0, incoming)

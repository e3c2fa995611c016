"""Kaggle's deadlines of a challenge, asked by every service they bind (taking part,
joining a team, merging) so the rule has one home:

- `entry_deadline`: after it no new team takes part and no one joins a team that does;
- `team_merger_deadline`: after it teams no longer merge (nor after the challenge ends);
- the final submission deadline: the last phase's end (`Challenge.final_submission_deadline`).
"""

from __future__ import annotations

import datetime as dt

from django.utils import dateformat, timezone

from challenges.models import Challenge

# How a deadline is named in a message: the reader's time zone (the active one), named.
WHEN_FORMAT = "Y-m-d H:i T"


def when(value: dt.datetime) -> str:
    """A moment as the reader reads it, in their (active) time zone, which it names."""
    return dateformat.format(timezone.localtime(value), WHEN_FORMAT)


def entry_closed(challenge: Challenge, now: dt.datetime | None = None) -> bool:
    deadline = challenge.entry_deadline
    return deadline is not None and (now or timezone.now()) >= deadline


def merger_deadline(challenge: Challenge) -> dt.datetime:
    """When merging stops: the merger deadline, or the challenge's end if sooner."""
    deadline = challenge.team_merger_deadline
    return min(deadline, challenge.end_date) if deadline else challenge.end_date


def merger_closed(challenge: Challenge, now: dt.datetime | None = None) -> bool:
    return (now or timezone.now()) >= merger_deadline(challenge)

"""Who sees which leaderboard rows. Every leaderboard read goes through
`access_leaderboard`, which decides the scope of entries and whose rows a reader gets.

Per split visibility (after the reveal, below):

- 1, host only: hosts (and admins) see every team's best over all submissions; anyone
  else gets a 404, as for a split that does not exist.
- 2, host and the submitting team: hosts as above; everyone else sees only the rows of
  their own team (none when they have no team), best over all of its submissions.
- 3, public: everyone sees the public ranking (public submissions, and baselines);
  hosts may ask for `?scope=all` (every submission) or `?scope=final` (final picks).

`private_splits_reveal: at_end` makes a host-only split public once its phase has ended,
ranked by each team's final picks; computed at read time, so nothing has to run at the
deadline. With `by_host` the same happens when a host reveals the split after the end. `anonymous_leaderboard` hides other teams' names from everyone but hosts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import (
    AccessDenied,
    NotFoundWithChoices,
    access_challenge,
    unknown_phase,
    user_is_challenge_host,
)
from challenges.models import (
    Challenge,
    ChallengePhase,
    ChallengePhaseSplit,
    LeaderboardEntry,
    SubmissionResult,
)
from challenges.selectors import participation_for_user

Scope = LeaderboardEntry.Scope
Visibility = ChallengePhaseSplit.Visibility
REVEAL_AT_END = "at_end"
# Kaggle's hosts publish the private leaderboard once they have checked it: the split is
# revealed when a host says so, after its phase ended.
REVEAL_BY_HOST = "by_host"


def effective_visibility(split: ChallengePhaseSplit, now: dt.datetime | None = None) -> int:
    """The split's visibility, with a host-only split revealed once its phase ended."""
    if split.visibility == Visibility.HOST and is_revealed(split, now):
        return Visibility.PUBLIC
    return split.visibility


def split_is_listed_to(is_host: bool, split: ChallengePhaseSplit) -> bool:
    """Whether a reader is told about a split and sees its scores: host-only ones (until
    revealed) to hosts only. The one rule for split lists, leaderboards and a team's own
    results, so a revealed split shows its scores everywhere at once."""
    return is_host or effective_visibility(split) != Visibility.HOST


def splits_listed_to(is_host: bool, splits) -> list[ChallengePhaseSplit]:
    """The splits a reader is told about (`split_is_listed_to`)."""
    return [ps for ps in splits if split_is_listed_to(is_host, ps)]


def results_shown_to(is_host: bool, results, phase: ChallengePhase) -> list[SubmissionResult]:
    """The active results of one submission to `phase` whose split the reader is told
    about (`split_is_listed_to`), less those a remote evaluator posted with EvalAI's
    `show_to_participant: false`, which only hosts see."""
    shown = []
    for result in results:
        split = result.phase_split
        if split.phase_id == phase.pk:
            # The reveal reads the split's phase: the caller's, not one query per result.
            split.phase = phase
        if not result.is_active or not split_is_listed_to(is_host, split):
            continue
        if is_host or result.shown_to_participant:
            shown.append(result)
    return shown


def is_revealed(split: ChallengePhaseSplit, now: dt.datetime | None = None) -> bool:
    """A host-only split shown to everyone, ranked by final picks: once its phase ended
    (`at_end`), or once a host revealed it after that (`by_host`)."""
    phase = split.phase
    if split.visibility != Visibility.HOST or not phase_has_ended(phase, now):
        return False
    if phase.private_splits_reveal == REVEAL_AT_END:
        return True
    return phase.private_splits_reveal == REVEAL_BY_HOST and split.revealed_at is not None


def phase_has_ended(phase: ChallengePhase, now: dt.datetime | None = None) -> bool:
    return phase.end_date is not None and (now or timezone.now()) >= phase.end_date


def may_reveal(split: ChallengePhaseSplit, now: dt.datetime | None = None) -> bool:
    """A host may reveal the split now (`private_splits_reveal: by_host`)."""
    return (
        split.visibility == Visibility.HOST
        and split.phase.private_splits_reveal == REVEAL_BY_HOST
        and split.revealed_at is None
        and phase_has_ended(split.phase, now)
    )


class UnknownSplit(NotFoundWithChoices, ChallengePhaseSplit.DoesNotExist):
    pass


def _unknown_split(
    user: AbstractBaseUser | AnonymousUser,
    challenge: Challenge,
    is_host: bool,
    codename: str,
    split_codename: str,
) -> NotFoundWithChoices:
    """What a reader is told when a phase has no split by that name they may see: the
    phases they may see when the phase is the problem, else the phase's listed splits."""
    phase = challenge.phases.filter(codename=codename).first()
    if phase is None or not (phase.is_public or is_host):
        return unknown_phase(user, challenge, codename)
    splits = phase.phase_splits.select_related("phase", "dataset_split").order_by("pk")
    codenames = [ps.dataset_split.codename for ps in splits_listed_to(is_host, splits)]
    return UnknownSplit(
        _("Phase %(phase)s has no leaderboard split %(asked)s; its splits are: %(choices)s.")
        % {
            "phase": repr(codename),
            "asked": repr(split_codename),
            "choices": ", ".join(codenames) or _("none"),
        },
        field="split",
        choices=codenames,
    )


@dataclass(frozen=True)
class LeaderboardView:
    challenge: Challenge
    phase: ChallengePhase
    split: ChallengePhaseSplit
    is_host: bool
    # The reader's team in this challenge (hosts: the hosts' own team, if any).
    team_id: int | None
    scope: str
    # Only this team's rows (visibility 2 for non-hosts); None: every team's.
    only_team_id: int | None
    visibility: int
    revealed: bool

    def shows_name(self, team_id: int, is_baseline: bool) -> bool:
        return (
            self.is_host
            or is_baseline
            or team_id == self.team_id
            or not self.challenge.anonymous_leaderboard
        )

    def shows_submission(self, team_id: int) -> bool:
        return self.is_host or team_id == self.team_id

    def require_host(self, action: str) -> None:
        """What only the challenge's hosts may do with a leaderboard (export, visibility)."""
        if not self.is_host:
            raise AccessDenied(_("Only the challenge's hosts can %(action)s.") % {"action": action})


def access_leaderboard(
    user: AbstractBaseUser | AnonymousUser,
    challenge_id: int,
    codename: str,
    split_codename: str,
    *,
    scope: str | None = None,
) -> LeaderboardView:
    """The leaderboard view `user` gets; DoesNotExist for what they may not know exists."""
    challenge = access_challenge(user, challenge_id)
    is_host = user_is_challenge_host(user, challenge)
    try:
        split = ChallengePhaseSplit.objects.select_related(
            "phase", "leaderboard", "dataset_split"
        ).get(
            phase__challenge=challenge,
            phase__codename=codename,
            dataset_split__codename=split_codename,
        )
    except ChallengePhaseSplit.DoesNotExist:
        raise _unknown_split(user, challenge, is_host, codename, split_codename) from None
    phase = split.phase
    phase.challenge = challenge
    if not phase.is_public and not is_host:
        raise unknown_phase(user, challenge, codename)
    revealed = is_revealed(split)
    visibility = effective_visibility(split)
    participation = participation_for_user(user, challenge) if user.is_authenticated else None
    team_id = participation.team_id if participation else None
    if not is_host and visibility == Visibility.HOST:
        # Before looking at the parameters: a hidden split answers as a missing one.
        raise _unknown_split(user, challenge, is_host, codename, split_codename)
    if scope and not is_host:
        raise AccessDenied(_("Only the challenge's hosts can choose the scope of a leaderboard."))
    if scope and scope not in Scope.values:
        raise InvalidScope(scope)
    only_team_id = None
    if is_host:
        default = (
            Scope.FINAL
            if revealed
            else Scope.PUBLIC
            if visibility == Visibility.PUBLIC
            else Scope.ALL
        )
        chosen = scope or default
    elif visibility == Visibility.OWNER_AND_HOST:
        chosen = Scope.ALL
        only_team_id = team_id if team_id is not None else -1
    else:
        chosen = Scope.FINAL if revealed else Scope.PUBLIC
    return LeaderboardView(
        challenge=challenge,
        phase=phase,
        split=split,
        is_host=is_host,
        team_id=team_id,
        scope=chosen,
        only_team_id=only_team_id,
        visibility=visibility,
        revealed=revealed,
    )


class InvalidScope(ValueError):
    def __init__(self, scope: str):
        super().__init__(
            _("%(scope)s is not a leaderboard scope; use one of: %(names)s.")
            % {"scope": repr(scope), "names": ", ".join(Scope.values)}
        )

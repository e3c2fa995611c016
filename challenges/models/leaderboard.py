"""Leaderboard entries: each team's standing per phase split, kept up to date by services.

Reading a leaderboard must cost a handful of queries and a few milliseconds at 100,000
submissions, so the ranking is not computed from SubmissionResult at read time. The
services in `challenges.services.leaderboard_refresh` re-derive a team's entries in the same
transaction as anything that can change them (a result, a re-run, is_public, a final
pick, a baseline mark, a ban); a read is one indexed query over at most one row per team.
"""

from __future__ import annotations

from django.db import models


class LeaderboardEntry(models.Model):
    """The row a team (or a baseline submission) shows on one phase split, for one scope
    and one ordering label.

    The best entry of a team depends on the label it is ranked by (and on which of its
    submissions the reader may see), so there is one row per (scope, label): a team's
    best by accuracy may not be its best by F1.
    """

    class Scope(models.TextChoices):
        # What everyone sees on a public split: public submissions of participant teams,
        # and baselines.
        PUBLIC = "public", "Public submissions"
        # What hosts see on their splits, and a team sees of itself: every submission.
        ALL = "all", "All submissions"
        # Kaggle's private leaderboard: each team's final picks (or its best public-split
        # entries when it picked none), and baselines.
        FINAL = "final", "Final picks"

    phase_split = models.ForeignKey(
        "challenges.ChallengePhaseSplit", on_delete=models.CASCADE, related_name="entries"
    )
    team = models.ForeignKey(
        "challenges.ParticipantTeam", on_delete=models.CASCADE, related_name="+"
    )
    scope = models.CharField(max_length=8, choices=Scope.choices)
    label = models.CharField(max_length=200)
    submission = models.ForeignKey(
        "challenges.Submission", on_delete=models.CASCADE, related_name="+"
    )
    # The score of `label`; NULL when the result lacks it (ranks after every real score).
    value = models.FloatField(null=True)
    scores = models.JSONField()
    submitted_at = models.DateTimeField()
    is_baseline = models.BooleanField(default=False)
    is_host_team = models.BooleanField(default=False)
    wall_time_s = models.FloatField(null=True)
    method_name = models.CharField(max_length=1000, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["phase_split", "scope", "label"], name="lb_entry_read_idx"),
            models.Index(fields=["team", "phase_split"], name="lb_entry_team_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.team_id} on {self.phase_split_id} ({self.scope}, {self.label})"

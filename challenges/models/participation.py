"""Participant teams and their participation in challenges."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_invitation_code() -> str:
    return secrets.token_urlsafe(12)


class ParticipantTeam(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ParticipantTeamMember", related_name="participant_teams"
    )
    # Whoever holds the code may join; any member can rotate it.
    invitation_code = models.CharField(max_length=32, unique=True, default=new_invitation_code)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class ParticipantTeamMember(models.Model):
    team = models.ForeignKey(ParticipantTeam, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participant_memberships"
    )
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="uniq_participant_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class ChallengeParticipation(models.Model):
    """A team takes part in a challenge after accepting its terms.

    Its row is the lock under which a team's submission quotas are checked.
    """

    challenge = models.ForeignKey(
        "challenges.Challenge", on_delete=models.CASCADE, related_name="participations"
    )
    team = models.ForeignKey(
        ParticipantTeam, on_delete=models.CASCADE, related_name="participations"
    )
    accepted_terms_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    accepted_terms_at = models.DateTimeField(default=timezone.now)
    # The hosts' own team, made when a host first submits (a baseline, or a trial run):
    # hosts cannot join their own challenge as participants. Its submissions stay off
    # the public ranking unless they are baselines.
    is_host_team = models.BooleanField(default=False)
    # Set by an admin (or a host) through `participation_set_banned`: the team's
    # submissions vanish from every leaderboard of the challenge.
    is_banned = models.BooleanField(default=False)
    banned_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["challenge", "team"], name="uniq_participation")
        ]

    def __str__(self) -> str:
        return f"{self.team} in {self.challenge}"


class TeamMerge(models.Model):
    """Kaggle's team merge in one challenge: `requesting_team` asks `receiving_team`; the
    receiving team's leader accepts, and the requesting team's members and submissions
    move into the receiving team, which keeps its name. Written only by the services in
    `challenges.services.merges`; kept after the decision as the merge's record."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the other team"
        ACCEPTED = "accepted", "Merged"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn"

    challenge = models.ForeignKey(
        "challenges.Challenge", on_delete=models.CASCADE, related_name="team_merges"
    )
    requesting_team = models.ForeignKey(
        ParticipantTeam, on_delete=models.CASCADE, related_name="merges_requested"
    )
    receiving_team = models.ForeignKey(
        ParticipantTeam, on_delete=models.CASCADE, related_name="merges_received"
    )
    # Names as they were: the requesting team's is gone from the challenge once merged.
    requesting_team_name = models.CharField(max_length=100)
    receiving_team_name = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    # What the merge moved (set when accepted).
    members_moved = models.PositiveIntegerField(default=0)
    submissions_moved = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            # One open request per pair of teams in a challenge.
            models.UniqueConstraint(
                fields=["challenge", "requesting_team", "receiving_team"],
                condition=models.Q(status="pending"),
                name="uniq_pending_team_merge",
            ),
            models.CheckConstraint(
                condition=~models.Q(requesting_team=models.F("receiving_team")),
                name="team_merge_two_teams",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.requesting_team_name} -> {self.receiving_team_name} ({self.status})"

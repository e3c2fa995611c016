"""Events found by the clock (the beat schedule calls these): a phase opening or closing
within 24 hours, and the weekly digest. Each carries a dedupe key, so any number of
sweeps record it once."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from challenges.models import ChallengePhase, NotificationPreference
from challenges.models.notifications import Channel, Kind
from challenges.notifications.events import event_record


def phase_deadlines_record(*, now=None) -> int:
    now = now or timezone.now()
    soon = now + timedelta(hours=24)
    phases = ChallengePhase.objects.filter(
        challenge__approved_by_admin=True, challenge__published=True, is_public=True
    ).filter(Q(start_date__gt=now, start_date__lte=soon) | Q(end_date__gt=now, end_date__lte=soon))
    recorded = 0
    for phase in phases:
        for kind, at in (
            (Kind.PHASE_OPENING, phase.start_date),
            (Kind.PHASE_CLOSING, phase.end_date),
        ):
            if at is None or not now < at <= soon:
                continue
            if event_record(
                kind=kind,
                challenge_id=phase.challenge_id,
                dedupe_key=f"{kind}:{phase.pk}:{at.isoformat()}",
                phase_id=phase.pk,
                at=at.isoformat(),
            ):
                recorded += 1
    return recorded


def digests_record(*, now=None) -> int:
    """One digest per opted-in user per ISO week."""
    now = now or timezone.now()
    year, week, _ = now.isocalendar()
    opted = NotificationPreference.objects.filter(
        kind=Kind.DIGEST, enabled=True, channel__in=[Channel.EMAIL, Channel.SITE]
    ).values("user_id")
    recorded = 0
    for user_id in (
        get_user_model().objects.filter(pk__in=opted, is_active=True).values_list("pk", flat=True)
    ):
        if event_record(
            kind=Kind.DIGEST,
            dedupe_key=f"digest:{user_id}:{year}-{week}",
            user_id=user_id,
            since=(now - timedelta(days=7)).isoformat(),
        ):
            recorded += 1
    return recorded

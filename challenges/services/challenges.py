"""Review of challenges by admins."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from challenges.models import AuditEvent, Challenge
from challenges.services.audit import audit_record
from challenges.services.scripts import challenge_prepare_environments


def challenge_approve(
    *, challenge: Challenge, reviewer: AbstractBaseUser, note: str = ""
) -> Challenge:
    now = timezone.now()
    with transaction.atomic():
        Challenge.objects.filter(pk=challenge.pk).update(
            approved_by_admin=True,
            review=Challenge.Review.APPROVED,
            review_note=note,
            reviewed_at=now,
        )
        audit_record(
            actor=reviewer,
            action=AuditEvent.Action.CHALLENGE_APPROVE,
            challenge=challenge,
            target=f"challenge {challenge.pk}",
            note=note,
        )
    challenge.refresh_from_db()
    challenge_prepare_environments(challenge=challenge)
    return challenge


def challenge_reject(
    *, challenge: Challenge, reviewer: AbstractBaseUser, note: str = ""
) -> Challenge:
    now = timezone.now()
    with transaction.atomic():
        Challenge.objects.filter(pk=challenge.pk).update(
            approved_by_admin=False,
            review=Challenge.Review.REJECTED,
            review_note=note,
            reviewed_at=now,
        )
        audit_record(
            actor=reviewer,
            action=AuditEvent.Action.CHALLENGE_REJECT,
            challenge=challenge,
            target=f"challenge {challenge.pk}",
            note=note,
        )
    challenge.refresh_from_db()
    return challenge

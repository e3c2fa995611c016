"""Review of challenges by admins."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from challenges.models import AuditEvent, Challenge
from challenges.models.notifications import Kind
from challenges.notifications.events import event_record
from challenges.services.audit import audit_record
from challenges.services.scripts import challenge_prepare_environments


def challenge_approve(
    *, challenge: Challenge, reviewer: AbstractBaseUser, note: str = ""
) -> Challenge:
    challenge = _challenge_review(
        challenge=challenge, reviewer=reviewer, note=note, review=Challenge.Review.APPROVED
    )
    challenge_prepare_environments(challenge=challenge)
    return challenge


def challenge_reject(
    *, challenge: Challenge, reviewer: AbstractBaseUser, note: str = ""
) -> Challenge:
    return _challenge_review(
        challenge=challenge, reviewer=reviewer, note=note, review=Challenge.Review.REJECTED
    )


def _challenge_review(*, challenge, reviewer, note: str, review: str) -> Challenge:
    """The admin's verdict and its audit record, in one transaction."""
    approved = review == Challenge.Review.APPROVED
    with transaction.atomic():
        Challenge.objects.filter(pk=challenge.pk).update(
            approved_by_admin=approved, review=review, review_note=note, reviewed_at=timezone.now()
        )
        audit_record(
            actor=reviewer,
            action=(
                AuditEvent.Action.CHALLENGE_APPROVE
                if approved
                else AuditEvent.Action.CHALLENGE_REJECT
            ),
            challenge=challenge,
            target=f"challenge {challenge.pk}",
            note=note,
        )
        # The hosts hear of the verdict (site, email, chat) once this commits.
        event_record(
            kind=Kind.CHALLENGE_REVIEW, challenge_id=challenge.pk, approved=approved, note=note
        )
    challenge.refresh_from_db()
    return challenge

"""The one writer of the audit log."""

from __future__ import annotations

from typing import Any

from challenges.models import AuditEvent, Challenge


def audit_record(
    *,
    actor,
    action: AuditEvent.Action,
    target: str = "",
    challenge: Challenge | None = None,
    **details: Any,
) -> AuditEvent:
    """Record that `actor` (a user, or None for the platform itself) did `action`.
    Call it inside the transaction of the change, so a rolled-back change leaves no
    record and a committed one always has its record."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_name=actor.get_username() if is_user else "",
        action=action,
        challenge=challenge,
        target=target[:200],
        details=details,
    )

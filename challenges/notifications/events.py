"""Recording that something happened: one row, in the caller's transaction, and after it
commits a Celery task (by name: challenges never imports workers) fans it out. A lost
broker message costs only time: the sweeper fans out events nobody took."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from challenges.models import NotificationEvent
from challenges.models.notifications import Kind
from challenges.notifications.dispatch import FAN_OUT_TASK, SEND_TASK, enqueue
from challenges.prepared import insert

__all__ = ["FAN_OUT_TASK", "SEND_TASK", "enqueue", "event_record"]


def event_record(
    *,
    kind: Kind,
    challenge_id: int | None = None,
    dedupe_key: str | None = None,
    send: bool = True,
    **payload,
) -> NotificationEvent | None:
    """Record an event of `kind`; None when `dedupe_key` was recorded before.

    `send=False`: the caller fans the event out itself once its transaction commits
    (a worker's task: fanout.fan_out_after_commit), instead of a task being sent for it."""
    event = NotificationEvent(
        kind=kind, challenge_id=challenge_id, payload=payload, dedupe_key=dedupe_key
    )
    if dedupe_key is not None:
        try:
            with transaction.atomic():
                insert(event)
        except IntegrityError:
            return None
    else:
        insert(event)  # NotificationEvent.objects.create(), its SQL compiled once
    if send:
        transaction.on_commit(lambda: enqueue(FAN_OUT_TASK, event.pk))
    return event

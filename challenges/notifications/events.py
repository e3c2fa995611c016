"""Recording that something happened: one row, in the caller's transaction, and after it
commits a Celery task (by name: challenges never imports workers) fans it out. A lost
broker message costs only time: the sweeper fans out events nobody took."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from challenges.models import NotificationEvent
from challenges.models.notifications import Kind
from challenges.notifications.dispatch import FAN_OUT_TASK, SEND_TASK, enqueue
from challenges.notifications.fanout import event_fan_out

log = logging.getLogger(__name__)

__all__ = ["FAN_OUT_TASK", "SEND_TASK", "enqueue", "event_record"]


def event_record(
    *,
    kind: Kind,
    challenge_id: int | None = None,
    dedupe_key: str | None = None,
    fan_out_here: bool = False,
    **payload,
) -> NotificationEvent | None:
    """Record an event of `kind`; None when `dedupe_key` was recorded before.

    `fan_out_here`: the caller is a worker's task, which fans the event out itself once
    its transaction commits, instead of sending a task for it (a broker message, and a
    task's dispatch in a worker, fewer per finished submission). The fan-out claims the
    event as the task would; if it fails, the task is sent after all (and the sweeper
    finds an event nobody claimed)."""
    if dedupe_key is not None:
        try:
            with transaction.atomic():
                event = NotificationEvent.objects.create(
                    kind=kind, challenge_id=challenge_id, payload=payload, dedupe_key=dedupe_key
                )
        except IntegrityError:
            return None
    else:
        event = NotificationEvent.objects.create(
            kind=kind, challenge_id=challenge_id, payload=payload
        )
    if fan_out_here:
        transaction.on_commit(lambda: _fan_out_here(event.pk))
    else:
        transaction.on_commit(lambda: enqueue(FAN_OUT_TASK, event.pk))
    return event


def _fan_out_here(event_id: int) -> None:
    try:
        event_fan_out(event_id=event_id)
    except Exception:
        log.exception("fanning out event %s; sending it to the workers instead", event_id)
        enqueue(FAN_OUT_TASK, event_id)

"""Sending outbox messages: claimed by one worker with a conditional update
(pending -> sending, exactly one row), then marked sent, or put back with a later attempt.

A sent row is never sent again: only a pending row can be claimed, and only the claimer
moves it on. A worker that dies between the mail server's acceptance and the update
leaves the row `sending`; the sweeper puts it back after OUTBOX_CLAIM_TIMEOUT_S, so that
narrow window is the one case of a second copy (at least once, never lost)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from challenges.models import NotificationEvent, OutboxMessage
from challenges.notifications.channels import SendFailed, send_chat, send_email
from challenges.notifications.dispatch import FAN_OUT_TASK, SEND_TASK, enqueue
from challenges.prepared import Prepared
from challenges.services import state_machine

Status = OutboxMessage.Status

# (step, to) -> the statuses the step may start from.
TRANSITIONS: state_machine.Table = {
    ("claim", Status.SENDING): (Status.PENDING,),
    ("sent", Status.SENT): (Status.SENDING,),
    ("retry", Status.PENDING): (Status.SENDING,),
    ("give_up", Status.FAILED): (Status.SENDING,),
    ("reclaim", Status.PENDING): (Status.SENDING,),
}


def _move(pk: int, step: str, to: str, extra: Q | None = None, **fields) -> bool:
    return state_machine.transition(
        OutboxMessage, TRANSITIONS, pk=pk, step=step, to=to, extra=extra, **fields
    )


def outbox_claim(*, message_id: int) -> OutboxMessage | None:
    """The message, now `sending` for this caller; None when it is not due or another
    worker has it (or sent it)."""
    now = timezone.now()
    if not _move(message_id, "claim", Status.SENDING, Q(next_attempt_at__lte=now), claimed_at=now):
        return None
    return _MESSAGE(message_id)[0]


# Read for every message sent (challenges.prepared: compiled once per process).
_MESSAGE = Prepared(lambda pk: OutboxMessage.objects.select_related("chat_hook").filter(pk=pk), int)


def outbox_send(*, message_id: int) -> float | None:
    """One attempt at one message. The delay before the next attempt, or None (sent, given
    up, or not ours to send)."""
    message = outbox_claim(message_id=message_id)
    if message is None:
        return None
    try:
        if message.transport == OutboxMessage.Transport.EMAIL:
            send_email(message.message)
        elif message.chat_hook is None:
            raise SendFailed("the chat hook was removed")
        else:
            send_chat(message.chat_hook, message.message)
    except SendFailed as exc:
        return _failed(message, str(exc))
    _move(
        message.pk,
        "sent",
        Status.SENT,
        sent_at=timezone.now(),
        attempts=message.attempts + 1,
        last_error="",
    )
    return None


def _failed(message: OutboxMessage, error: str) -> float | None:
    attempts = message.attempts + 1
    if attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        _move(message.pk, "give_up", Status.FAILED, attempts=attempts, last_error=error[:2000])
        return None
    delay = min(settings.OUTBOX_RETRY_BASE_S * 2 ** (attempts - 1), 3600.0)
    _move(
        message.pk,
        "retry",
        Status.PENDING,
        attempts=attempts,
        last_error=error[:2000],
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    return delay


def outbox_sweep(*, now=None) -> dict[str, int]:
    """What a lost broker message or a dead worker left behind: events never fanned out,
    messages due and not sent, messages claimed by a worker that did not come back."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_S)
    # One at a time, each still stale when moved: a row claimed again meanwhile is not
    # taken from its new sender.
    reclaimed = sum(
        _move(pk, "reclaim", Status.PENDING, Q(claimed_at__lt=stale), next_attempt_at=now)
        for pk in OutboxMessage.objects.filter(
            status=Status.SENDING, claimed_at__lt=stale
        ).values_list("pk", flat=True)[:1000]
    )
    due = list(
        OutboxMessage.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
    for pk in due:
        enqueue(SEND_TASK, pk)
    events = list(
        NotificationEvent.objects.filter(
            fanned_out_at__isnull=True, created_at__lt=now - timedelta(seconds=30)
        ).values_list("pk", flat=True)[:1000]
    )
    for pk in events:
        enqueue(FAN_OUT_TASK, pk)
    return {"reclaimed": reclaimed, "sent_again": len(due), "events": len(events)}

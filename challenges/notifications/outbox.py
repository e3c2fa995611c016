"""Sending outbox messages: claimed by one worker with a conditional update
(pending -> sending, exactly one row), then marked sent, or put back with a later attempt.

A sent row is never sent again: only a pending row can be claimed, and only the claimer
moves it on. A worker that dies between the mail server's acceptance and the update
leaves the row `sending`; the sweeper puts it back after OUTBOX_CLAIM_TIMEOUT_S, so that
narrow window is the one case of a second copy (at least once, never lost)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from challenges.models import NotificationEvent, OutboxMessage
from challenges.notifications.channels import SendFailed, send_chat, send_email
from challenges.notifications.events import FAN_OUT_TASK, SEND_TASK, enqueue

Status = OutboxMessage.Status


def outbox_claim(*, message_id: int) -> OutboxMessage | None:
    """The message, now `sending` for this caller; None when it is not due or another
    worker has it (or sent it)."""
    now = timezone.now()
    claimed = OutboxMessage.objects.filter(
        pk=message_id, status=Status.PENDING, next_attempt_at__lte=now
    ).update(status=Status.SENDING, claimed_at=now)
    if claimed != 1:
        return None
    return OutboxMessage.objects.select_related("chat_hook").get(pk=message_id)


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
    OutboxMessage.objects.filter(pk=message.pk, status=Status.SENDING).update(
        status=Status.SENT, sent_at=timezone.now(), attempts=message.attempts + 1, last_error=""
    )
    return None


def _failed(message: OutboxMessage, error: str) -> float | None:
    attempts = message.attempts + 1
    if attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        OutboxMessage.objects.filter(pk=message.pk, status=Status.SENDING).update(
            status=Status.FAILED, attempts=attempts, last_error=error[:2000]
        )
        return None
    delay = min(settings.OUTBOX_RETRY_BASE_S * 2 ** (attempts - 1), 3600.0)
    OutboxMessage.objects.filter(pk=message.pk, status=Status.SENDING).update(
        status=Status.PENDING,
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
    reclaimed = OutboxMessage.objects.filter(status=Status.SENDING, claimed_at__lt=stale).update(
        status=Status.PENDING, next_attempt_at=now
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

"""Turning one event into in-site notifications and outbox messages, exactly once: the
claim (`fanned_out_at` set by a conditional update) and every row it writes share one
transaction, so a worker that dies half-way leaves the event unclaimed for the sweeper."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone, translation

from challenges.models import (
    ChatHook,
    Notification,
    NotificationEvent,
    NotificationPreference,
    OutboxMessage,
    ParticipantTeamMember,
    Submission,
)
from challenges.models.notifications import Channel, Kind
from challenges.notifications.channels import chat_payload
from challenges.notifications.dispatch import FAN_OUT_TASK, SEND_TASK, enqueue
from challenges.notifications.leaders import leaders_check
from challenges.notifications.messages import compose, recipients, user_language
from challenges.notifications.preferences import (
    default_enabled,
    enabled_users_by_channel,
    unsubscribe_url,
)
from challenges.prepared import Prepared, insert_rows, raw_rows

log = logging.getLogger(__name__)

# RFC 8058's fixed header value, which mail clients read, not people.
ONE_CLICK = "List-Unsubscribe=One-Click"


def fan_out_after_commit(event_id: int) -> None:
    """For a worker's task: fan the event out here once the task's transaction commits,
    instead of sending a task for it (a broker message, and a task's dispatch in a worker,
    fewer per finished submission). The fan-out claims the event as the task would; if it
    fails, the task is sent after all (and the sweeper finds an event nobody claimed)."""
    transaction.on_commit(lambda: _fan_out_here(event_id))


def _fan_out_here(event_id: int) -> None:
    try:
        event_fan_out(event_id=event_id)
    except Exception:
        log.exception("fanning out event %s; sending it to the workers instead", event_id)
        enqueue(FAN_OUT_TASK, event_id)


def event_fan_out(*, event_id: int) -> int:
    """Fan out one event; how many outbox messages it made (0 when another worker had
    it already)."""
    with transaction.atomic():
        event = _claim(event_id)
        if event is None:
            return 0  # someone else fanned it out, or it is gone
        messages = _fan_out(event)
        # (An event recorded before `board_changed` existed is checked.)
        if event.kind == Kind.SUBMISSION_FINISHED and event.payload.get("board_changed", True):
            leaders_check(phase_id=event.payload["phase_id"])
        ids = [m.pk for m in messages]
        transaction.on_commit(lambda: [enqueue(SEND_TASK, pk) for pk in ids])
    return len(ids)


# The claim and the read in one statement (one per event fanned out; the ORM's update and
# get were two, each compiled anew). UPDATE ... RETURNING: PostgreSQL, and SQLite >= 3.35.
# The model's columns by name, not `*`: a column a later migration adds leaves the plan
# PostgreSQL keeps for it (challenges.prepared) as it was.
_CLAIM_SQL = f"""
    UPDATE {NotificationEvent._meta.db_table} SET fanned_out_at = %s
    WHERE id = %s AND fanned_out_at IS NULL
    RETURNING {", ".join(f'"{f.column}"' for f in NotificationEvent._meta.concrete_fields)}
"""  # noqa: S608 - the table and column names from the model; values are parameters


def _claim(event_id: int) -> NotificationEvent | None:
    """The event, now claimed by this caller; None when another had it or it is gone."""
    if connection.features.can_return_columns_from_insert:
        found = raw_rows(NotificationEvent, _CLAIM_SQL, [timezone.now(), event_id])
        return found[0] if found else None
    claimed = NotificationEvent.objects.filter(pk=event_id, fanned_out_at__isnull=True).update(
        fanned_out_at=timezone.now()
    )
    return NotificationEvent.objects.get(pk=event_id) if claimed == 1 else None


def _users(user_ids):
    return (
        get_user_model()
        .objects.filter(pk__in=user_ids, is_active=True)
        .select_related("profile")  # user_language reads it: one query, not one per user
    )


def _chosen(kind: str, channel: str):
    return Subquery(
        NotificationPreference.objects.filter(
            user_id=OuterRef("pk"), kind=kind, channel=channel
        ).values("enabled")[:1]
    )


# A submission's team, with each member's choices for the event's kind and the title of
# the submission's challenge (which the message names; an uncorrelated subquery, run once):
# the fan-out of every finished submission, one statement compiled once (challenges.prepared).
_TEAM_OF_SUBMISSION = Prepared(
    lambda submission_id, kind: _users(
        ParticipantTeamMember.objects.filter(
            team_id__in=Submission.objects.filter(pk=submission_id).values("team_id")
        ).values("user_id")
    ).annotate(
        chose_site=_chosen(kind, Channel.SITE),
        chose_email=_chosen(kind, Channel.EMAIL),
        challenge_title=Subquery(
            Submission.objects.filter(pk=submission_id).values("phase__challenge__title")[:1]
        ),
    ),
    int,
    str,
)


def _enabled(chose: bool | None, kind: str, channel: str) -> bool:
    return default_enabled(kind, channel) if chose is None else chose


def _fan_out(event: NotificationEvent) -> list[OutboxMessage]:
    if event.kind in (Kind.SUBMISSION_FINISHED, Kind.SUBMISSION_FAILED):
        # (Who `recipients` names for these kinds, and their preferences, in one read.)
        users = _TEAM_OF_SUBMISSION(event.payload["submission_id"], event.kind)
        site, email = (
            {u.pk for u in users if _enabled(getattr(u, f"chose_{channel}"), event.kind, channel)}
            for channel in (Channel.SITE, Channel.EMAIL)
        )
        title = {"challenge_title": users[0].challenge_title or ""} if users else {}
    else:
        users = list(_users(recipients(event)))
        title = {}
        site, email = enabled_users_by_channel(
            [u.pk for u in users], event.kind, (Channel.SITE, Channel.EMAIL)
        )
    notes, outbox = [], []
    # One message per language (the digest is per user): an announcement to thousands
    # costs its reads once, not once per reader.
    composed: dict[str, object] = {}
    for user in users:
        if user.pk not in site and user.pk not in email:
            continue
        language = user_language(user)
        key = f"{language}:{user.pk}" if event.kind == Kind.DIGEST else language
        if key not in composed:
            with translation.override(language):
                composed[key] = compose(event, user.pk, **title)
        message = composed[key]
        if user.pk in site:
            notes.append(
                Notification(
                    user=user,
                    kind=event.kind,
                    challenge_id=event.challenge_id,
                    event=event,
                    title=message.title[:300],
                    url=message.url,
                )
            )
        if user.pk in email and user.email:
            outbox.append(_email(event, user, message))
    # A retried fan-out tells no one twice (uniq_notification_event): conflicts skipped.
    insert_rows(Notification, notes, ignore_conflicts=True)
    outbox.extend(_chat(event))
    return OutboxMessage.objects.bulk_create(outbox)


def _email(event: NotificationEvent, user, message) -> OutboxMessage:
    unsubscribe = unsubscribe_url(user.pk, event.kind)
    site = settings.SITE_URL.rstrip("/")
    with translation.override(user_language(user)):
        footer = translation.gettext(
            "You get this email because of your notification settings. "
            "Stop emails of this kind: %(url)s"
        ) % {"url": unsubscribe}
        language = translation.get_language()
    return OutboxMessage(
        transport=OutboxMessage.Transport.EMAIL,
        kind=event.kind,
        event=event,
        user=user,
        message={
            "to": user.email,
            "subject": f"[evalserver] {message.title}"[:300],
            "body": f"{message.body}\n\n{site}{message.url}\n\n-- \n{footer}\n",
            "language": language,
            "headers": {
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": ONE_CLICK,
                "Content-Language": language,
            },
        },
    )


def _chat(event: NotificationEvent) -> list[OutboxMessage]:
    if event.challenge_id is None or event.kind == Kind.DIGEST:
        return []
    hooks = [
        h
        for h in ChatHook.objects.filter(challenge_id=event.challenge_id)
        if event.kind in h.events
    ]
    if not hooks:
        return []
    with translation.override(settings.LANGUAGE_CODE):
        message = compose(event)
    link = settings.SITE_URL.rstrip("/") + message.url
    return [
        OutboxMessage(
            transport=OutboxMessage.Transport.CHAT,
            kind=event.kind,
            event=event,
            chat_hook=hook,
            message=chat_payload(hook.flavour, message.title, link),
        )
        for hook in hooks
    ]

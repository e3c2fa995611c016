"""Per-user choices per kind and channel, and the signed one-click unsubscribe link."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from challenges.models import NotificationPreference
from challenges.models.notifications import Channel, Kind

UNSUBSCRIBE_SALT = "evalserver.notifications.unsubscribe"
# Opt-in: off until the user turns it on. An email per scored submission is opt-in too: the
# site shows the score (as Kaggle does, which sends none), and a team's bot submitting many
# times a day would flood its members' inboxes. A failed submission still emails by default.
OFF_BY_DEFAULT = {
    (Kind.DIGEST, Channel.SITE),
    (Kind.DIGEST, Channel.EMAIL),
    (Kind.SUBMISSION_FINISHED, Channel.EMAIL),
}


def default_enabled(kind: str, channel: str) -> bool:
    return (kind, channel) not in OFF_BY_DEFAULT


def preferences_of(user) -> dict[tuple[str, str], bool]:
    """Every (kind, channel) -> on or off for `user`, defaults filled in."""
    chosen = {
        (p.kind, p.channel): p.enabled for p in NotificationPreference.objects.filter(user=user)
    }
    return {
        (kind, channel): chosen.get((kind, channel), default_enabled(kind, channel))
        for kind in Kind.values
        for channel in Channel.values
    }


def enabled_users(user_ids, kind: str, channel: str) -> set[int]:
    """Of `user_ids`, those who hear of `kind` on `channel` (one query)."""
    user_ids = set(user_ids)
    rows = NotificationPreference.objects.filter(user_id__in=user_ids, kind=kind, channel=channel)
    chosen = dict(rows.values_list("user_id", "enabled"))
    default = default_enabled(kind, channel)
    return {pk for pk in user_ids if chosen.get(pk, default)}


def enabled_users_by_channel(user_ids, kind: str, channels) -> tuple[set[int], ...]:
    """`enabled_users` for each of `channels`, in that order, from one query."""
    user_ids = set(user_ids)
    if not user_ids:
        return tuple(set() for _ in channels)
    rows = NotificationPreference.objects.filter(
        user_id__in=user_ids, kind=kind, channel__in=list(channels)
    ).values_list("channel", "user_id", "enabled")
    chosen: dict[str, dict[int, bool]] = {channel: {} for channel in channels}
    for channel, user_id, enabled in rows:
        chosen[channel][user_id] = enabled
    return tuple(
        {pk for pk in user_ids if chosen[channel].get(pk, default_enabled(kind, channel))}
        for channel in channels
    )


def preference_set(*, user, kind: str, channel: str, enabled: bool) -> None:
    if kind not in Kind.values or channel not in Channel.values:
        raise ValueError(f"unknown notification kind or channel: {kind!r}, {channel!r}")
    NotificationPreference.objects.update_or_create(
        user=user, kind=kind, channel=channel, defaults={"enabled": enabled}
    )


def unsubscribe_token(user_id: int, kind: str) -> str:
    # No timestamp: the same link for the same user and kind in every email, never expiring.
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object({"u": user_id, "k": kind})


def unsubscribe_url(user_id: int, kind: str) -> str:
    path = reverse("notifications-unsubscribe", args=[unsubscribe_token(user_id, kind)])
    return settings.SITE_URL.rstrip("/") + path


def unsubscribe_read(token: str) -> tuple[int, str] | None:
    """(user id, kind) from a link we signed; None for anything else. The link does not
    expire: an old email's link must still work."""
    try:
        data = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("k") not in Kind.values:
        return None
    if not isinstance(data.get("u"), int):
        return None
    return data["u"], data["k"]


def unsubscribe_apply(*, token: str) -> tuple[int, str] | None:
    """Turn off email for the link's kind; what it turned off, or None for a bad link."""
    found = unsubscribe_read(token)
    if found is None:
        return None
    user_id, kind = found
    NotificationPreference.objects.update_or_create(
        user_id=user_id, kind=kind, channel=Channel.EMAIL, defaults={"enabled": False}
    )
    return found

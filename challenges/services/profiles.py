"""A person's language and time zone (challenges.models.UserProfile)."""

from __future__ import annotations

import functools
import zoneinfo

from django.conf import settings

from challenges.models import UserProfile


def valid_language(code: str | None) -> str | None:
    """`code` if the site offers it, else None."""
    return code if code in dict(settings.LANGUAGES) else None


def valid_time_zone(name: str | None) -> str | None:
    """`name` if it is an IANA time zone this machine knows, else None. Only names from
    zoneinfo's own list: ZoneInfo() alone would also open paths such as "../x"."""
    return name if name and name in known_time_zones() else None


@functools.cache
def known_time_zones() -> frozenset[str]:
    """Read once per process: listing the zone files takes a noticeable while."""
    return frozenset(zoneinfo.available_timezones())


def profile_preferences(*, user) -> dict[str, str]:
    """The saved choices, blank where none was made."""
    profile = UserProfile.objects.filter(user=user).first()
    return {
        "language": profile.language if profile else "",
        "time_zone": profile.time_zone if profile else "",
    }


def profile_set_language(*, user, language: str) -> bool:
    """Remember `language` for `user`; False (nothing saved) if the site does not offer it."""
    if valid_language(language) is None:
        return False
    UserProfile.objects.update_or_create(user=user, defaults={"language": language})
    return True


def profile_set_time_zone(*, user, time_zone: str, only_if_unset: bool = False) -> bool:
    """Remember `time_zone` for `user`; False if it is not a known zone, or, with
    `only_if_unset` (the browser's guess on a first visit), if one is already chosen."""
    if valid_time_zone(time_zone) is None:
        return False
    profile, _created = UserProfile.objects.get_or_create(user=user)
    if only_if_unset and profile.time_zone:
        return False
    # A conditional update: two first-visit requests at once must not overwrite a choice
    # the person made in between.
    rows = UserProfile.objects.filter(pk=profile.pk)
    if only_if_unset:
        rows = rows.filter(time_zone="")
    return rows.update(time_zone=time_zone) == 1
